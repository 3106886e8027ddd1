/*
 * aag_bmm_offsets.h — every offset, count and index formula of the fused
 * AlltoAllAllGatherBatchMatMul operator, in one header with no Ascend C type.
 *
 * The Ascend C kernel (op_kernel/aag_bmm_kernel.h) and the CPU host twin
 * (tests/cpp/test_host_twin.cpp) both include this file, so the arithmetic the
 * twin proves on a simulated ep x tp world is the arithmetic the kernel runs.
 *
 * Vocabulary (see docs/op_alltoall_allgather_bmm.md):
 *   rank (i, t)      i = index in the ep group, t = index in the tp group
 *   El               local experts = E / ep
 *   Rx, Hx           x.size(1), x.size(2) (rows / columns of one x expert)
 *   C, H, N          C = rows per source ep rank in y (shard 1: Rx*tp, shard 0: Rx)
 *                    H = hidden (shard 1: Hx, shard 0: Hx*tp), N = M/tp
 *   Y2buf            (El, ep*C, H) row-major: y2 itself when it is requested,
 *                    otherwise a scratch region of the workspace
 *   tile 0           the LOCAL block: shard 1 = the rows that came from this very
 *                    rank (i, t) (no network); shard 0 = the rows of source ep
 *                    rank i (needs only the tp AllGather, no AlltoAll)
 *   tiles 1..nRemote REMOTE tiles: an expert range [e0, e0+eL) x a row range
 *                    [c0, c0+cL) of x, exchanged with AlltoAll(V) over ep then
 *                    AllGather over tp, assembled into Y2buf, then multiplied.
 *   slot             position of a source ep rank j inside a remote tile's
 *                    AlltoAll receive buffer: shard 1 keeps all ep ranks
 *                    (slot == j; the own block is a local copy and is needed by
 *                    the tp peers); shard 0 drops j == i (handled by tile 0), so
 *                    slot = j < i ? j : j - 1.
 *
 * All quantities are element counts (not bytes) unless the name says Bytes.
 */
#ifndef MOE_MC2_AAG_BMM_OFFSETS_H
#define MOE_MC2_AAG_BMM_OFFSETS_H

#if defined(__CCE_AICORE__) || defined(__CCE_KT_TEST__)
#include "kernel_operator.h"  // __aicore__ and the fixed-width integer types of device builds
#define AAG_FN __aicore__ inline
#else
#include <cstdint>
#define AAG_FN inline
#endif

namespace aag {

constexpr uint32_t kMaxRemoteTiles = 16U;  // keeps Prepare calls per group well under HCCL's 32
constexpr uint32_t kMaxWorld = 16U;
constexpr uint64_t kNone = ~static_cast<uint64_t>(0);

/* Geometry + plan: a plain struct of fixed-width integers. The host tiling
 * fills it (op_host/core), the kernel reads it from the tiling data, the twin
 * builds it from the same planner. */
struct Geom {
    uint32_t ep;
    uint32_t tp;
    uint32_t shard;        // x_shard_type: 0 gather along H, 1 gather along C
    uint32_t act;          // act_type 0..4
    uint64_t E;            // experts in total
    uint64_t El;           // E / ep
    uint64_t Rx;           // x.size(1)
    uint64_t Hx;           // x.size(2)
    uint64_t C;            // rows per source ep rank in y
    uint64_t H;            // full hidden size (K of the matmul)
    uint64_t N;            // M / tp
    uint64_t eTile;        // experts per remote tile (last one may be shorter)
    uint64_t cTile;        // x rows per remote tile (last one may be shorter)
    uint32_t nETiles;      // ceil(El / eTile)
    uint32_t nCTiles;      // ceil(Rx / cTile)
    uint32_t transposeWeight;
    uint32_t hasBias;
    uint32_t y2Out;        // y2 is a real output
    uint32_t y3Out;        // y3 is a real output (flag && act != 0)
    uint32_t reserved;
};

/* ---------------------------------------------------------------- tiles -- */

AAG_FN uint32_t NumRemoteTiles(const Geom &g) { return g.nETiles * g.nCTiles; }
AAG_FN uint32_t NumTiles(const Geom &g) { return 1U + NumRemoteTiles(g); }

struct TileRange {
    uint64_t e0;
    uint64_t eL;
    uint64_t c0;   // in x-row coordinates (0..Rx)
    uint64_t cL;
};

/* k = 0 is the local block (all experts, all rows); k >= 1 remote tiles,
 * expert-chunk major, row-chunk minor. */
AAG_FN TileRange Tile(const Geom &g, uint32_t k)
{
    TileRange r;
    if (k == 0U) {
        r.e0 = 0U; r.eL = g.El; r.c0 = 0U; r.cL = g.Rx;
        return r;
    }
    uint32_t idx = k - 1U;
    uint64_t eb = idx / g.nCTiles;
    uint64_t cb = idx % g.nCTiles;
    r.e0 = eb * g.eTile;
    r.eL = (r.e0 + g.eTile <= g.El) ? g.eTile : (g.El - r.e0);
    r.c0 = cb * g.cTile;
    r.cL = (r.c0 + g.cTile <= g.Rx) ? g.cTile : (g.Rx - r.c0);
    return r;
}

/* Number of (expert x x-row) cells of all remote tiles before tile k (k >= 1);
 * the remote tiles partition the El x Rx grid, so this is a prefix sum. */
AAG_FN uint64_t RemoteCellsBefore(const Geom &g, uint32_t k)
{
    TileRange r = Tile(g, k);
    uint64_t cb = (k - 1U) % g.nCTiles;
    return r.e0 * g.Rx + r.eL * cb * g.cTile;
}

/* ---------------------------------------------------------------- slots -- */

AAG_FN uint64_t NumSlots(const Geom &g) { return (g.shard == 1U) ? g.ep : (g.ep - 1U); }

AAG_FN uint64_t SlotOfPeer(const Geom &g, uint64_t i, uint64_t j)
{
    if (g.shard == 1U) {
        return j;
    }
    if (j == i) {
        return kNone;
    }
    return (j < i) ? j : (j - 1U);
}

AAG_FN uint64_t PeerOfSlot(const Geom &g, uint64_t i, uint64_t q)
{
    if (g.shard == 1U) {
        return q;
    }
    return (q < i) ? q : (q + 1U);
}

/* ------------------------------------------------------ AlltoAllV (ep) -- */

/* elements one rank sends to one peer (and receives from one peer) for tile k */
AAG_FN uint64_t A2ABlock(const Geom &g, uint32_t k)
{
    TileRange r = Tile(g, k);
    return r.eL * r.cL * g.Hx;
}

/* send count to peer j (0 for the own block in shard 0) */
AAG_FN uint64_t A2ASendCount(const Geom &g, uint32_t k, uint64_t i, uint64_t j)
{
    return (SlotOfPeer(g, i, j) == kNone) ? 0U : A2ABlock(g, k);
}

/* element offset inside x of what goes to peer j: x[j*El + e0, c0, 0].
 * Contiguous because a remote tile has eL == 1 or cL == Rx. */
AAG_FN uint64_t A2ASendDispl(const Geom &g, uint32_t k, uint64_t j)
{
    TileRange r = Tile(g, k);
    return ((j * g.El + r.e0) * g.Rx + r.c0) * g.Hx;
}

/* element offset of peer j's block inside tile k's AlltoAll receive buffer */
AAG_FN uint64_t A2ARecvDispl(const Geom &g, uint32_t k, uint64_t i, uint64_t j)
{
    uint64_t q = SlotOfPeer(g, i, j);
    return (q == kNone) ? 0U : q * A2ABlock(g, k);
}

AAG_FN uint64_t A2ATileElems(const Geom &g, uint32_t k) { return NumSlots(g) * A2ABlock(g, k); }

/* --------------------------------------------------------- AllGather (tp) -- */

/* tile 0 (shard 0 only): send x[i*El .. (i+1)*El) = El*Rx*Hx elements */
AAG_FN uint64_t AGSendCount(const Geom &g, uint32_t k)
{
    if (k == 0U) {
        return (g.shard == 0U) ? g.El * g.Rx * g.Hx : 0U;
    }
    return A2ATileElems(g, k);
}

AAG_FN uint64_t LocalAGSendDispl(const Geom &g, uint64_t i) { return i * g.El * g.Rx * g.Hx; }

/* ------------------------------------------------------ workspace layout -- */

struct WsLayout {
    uint64_t a2aOff;      // elements (x dtype) from the start of the user workspace
    uint64_t a2aElems;
    uint64_t agOff;
    uint64_t agElems;
    uint64_t localAgOff;
    uint64_t localAgElems;
    uint64_t y2Off;       // scratch Y2buf when y2 is not an output
    uint64_t y2Elems;
    uint64_t accOffBytes; // fp32 matmul result scratch, byte offset (32-byte aligned)
    uint64_t accElems;    // floats
    uint64_t totalBytes;
};

AAG_FN uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1U) / a * a; }

/* largest matmul run (rows) of any tile: see RunRows */
AAG_FN uint64_t MaxRunRows(const Geom &g)
{
    uint64_t local = (g.shard == 1U) ? g.Rx : g.C;
    return (g.cTile > local) ? g.cTile : local;
}

/* workspace in units of one element of x (elemBytes) plus an fp32 scratch */
AAG_FN WsLayout Workspace(const Geom &g, uint64_t elemBytes)
{
    WsLayout w;
    const uint64_t align = 512U / elemBytes;  // keep every region 512-byte aligned
    uint64_t cells = g.El * g.Rx * g.Hx;      // all remote tiles together
    w.a2aOff = 0U;
    w.a2aElems = NumSlots(g) * cells;
    w.agOff = AlignUp(w.a2aOff + w.a2aElems, align);
    w.agElems = static_cast<uint64_t>(g.tp) * NumSlots(g) * cells;
    w.localAgOff = AlignUp(w.agOff + w.agElems, align);
    w.localAgElems = (g.shard == 0U) ? static_cast<uint64_t>(g.tp) * cells : 0U;
    w.y2Off = AlignUp(w.localAgOff + w.localAgElems, align);
    w.y2Elems = (g.y2Out != 0U) ? 0U : g.El * g.ep * g.C * g.H;
    uint64_t endElems = AlignUp(w.y2Off + w.y2Elems, align);
    w.accOffBytes = endElems * elemBytes;
    w.accElems = MaxRunRows(g) * g.N;
    w.totalBytes = AlignUp(w.accOffBytes + w.accElems * 4U, 512U);
    return w;
}

/* element offset of tile k's buffers inside the a2a / ag regions */
AAG_FN uint64_t A2ATileOff(const Geom &g, uint32_t k) { return NumSlots(g) * RemoteCellsBefore(g, k) * g.Hx; }
AAG_FN uint64_t AGTileOff(const Geom &g, uint32_t k)
{
    return static_cast<uint64_t>(g.tp) * NumSlots(g) * RemoteCellsBefore(g, k) * g.Hx;
}

/* ------------------------------------------------------- assemble (copy) -- */

/* Y2buf element offset of row `row`, column `col` of local expert e */
AAG_FN uint64_t Y2Off(const Geom &g, uint64_t e, uint64_t row, uint64_t col)
{
    return (e * g.ep * g.C + row) * g.H + col;
}

/* y row of x-row c coming from source (j, s) */
AAG_FN uint64_t YRow(const Geom &g, uint64_t j, uint64_t s, uint64_t c)
{
    return (g.shard == 1U) ? (j * g.C + s * g.Rx + c) : (j * g.C + c);
}

/* first Y2buf column fed by tp source s */
AAG_FN uint64_t YCol(const Geom &g, uint64_t s) { return (g.shard == 1U) ? 0U : s * g.Hx; }

/* One assemble block = `rows` rows of Hx elements, source rows contiguous
 * (stride Hx), destination rows with stride H (== Hx for shard 1).
 * srcKind: 0 = x, 1 = local AllGather region, 2 = remote AllGather region
 * (srcOff is relative to that region's start). */
struct CopyBlock {
    uint32_t srcKind;
    uint32_t skip;     // 1: nothing to copy (the (i,t) block inside a remote tile, shard 1)
    uint64_t srcOff;
    uint64_t dstOff;   // inside Y2buf
    uint64_t rows;
};

AAG_FN uint64_t NumCopyBlocks(const Geom &g, uint32_t k)
{
    if (k == 0U) {
        return (g.shard == 1U) ? g.El : g.El * g.tp;
    }
    return static_cast<uint64_t>(g.tp) * NumSlots(g) * Tile(g, k).eL;
}

AAG_FN CopyBlock CopyBlockAt(const Geom &g, uint64_t i, uint64_t t, uint32_t k, uint64_t b)
{
    CopyBlock cb;
    cb.skip = 0U;
    if (k == 0U) {
        if (g.shard == 1U) {                     // x[i*El + e] -> rows of source (i, t)
            uint64_t e = b;
            cb.srcKind = 0U;
            cb.srcOff = (i * g.El + e) * g.Rx * g.Hx;
            cb.dstOff = Y2Off(g, e, YRow(g, i, t, 0U), 0U);
            cb.rows = g.Rx;
        } else {                                 // gathered [s][e][c][Hx] -> columns of s
            uint64_t s = b / g.El;
            uint64_t e = b % g.El;
            cb.srcKind = 1U;
            cb.srcOff = (s * g.El + e) * g.Rx * g.Hx;
            cb.dstOff = Y2Off(g, e, YRow(g, i, s, 0U), YCol(g, s));
            cb.rows = g.Rx;
        }
        return cb;
    }
    TileRange r = Tile(g, k);
    uint64_t nq = NumSlots(g);
    uint64_t s = b / (nq * r.eL);
    uint64_t rem = b % (nq * r.eL);
    uint64_t q = rem / r.eL;
    uint64_t el = rem % r.eL;
    uint64_t j = PeerOfSlot(g, i, q);
    cb.srcKind = 2U;
    cb.srcOff = AGTileOff(g, k) + ((s * nq + q) * r.eL + el) * r.cL * g.Hx;
    cb.dstOff = Y2Off(g, r.e0 + el, YRow(g, j, s, r.c0), YCol(g, s));
    cb.rows = r.cL;
    if (g.shard == 1U && j == i && s == t) {
        cb.skip = 1U;
    }
    return cb;
}

/* ------------------------------------------------------------ matmul runs -- */

/* A run = one (rows x H) * (H x N) matmul of local expert e whose A rows are
 * Y2buf rows [row0, row0+rows) and whose output rows are the same rows of
 * y1 / y3 (El, ep*C, N). */
struct Run {
    uint64_t e;
    uint64_t row0;
    uint64_t rows;
};

AAG_FN uint64_t NumRuns(const Geom &g, uint32_t k)
{
    if (k == 0U) {
        return g.El;
    }
    TileRange r = Tile(g, k);
    uint64_t perExpert = (g.shard == 1U) ? (static_cast<uint64_t>(g.ep) * g.tp - 1U) : (g.ep - 1U);
    return r.eL * perExpert;
}

AAG_FN Run RunAt(const Geom &g, uint64_t i, uint64_t t, uint32_t k, uint64_t idx)
{
    Run run;
    if (k == 0U) {
        run.e = idx;
        run.row0 = (g.shard == 1U) ? YRow(g, i, t, 0U) : YRow(g, i, 0U, 0U);
        run.rows = g.Rx;
        return run;
    }
    TileRange r = Tile(g, k);
    if (g.shard == 1U) {
        uint64_t per = static_cast<uint64_t>(g.ep) * g.tp - 1U;
        uint64_t el = idx / per;
        uint64_t src = idx % per;                 // enumerates (j, s) != (i, t), j major
        uint64_t own = i * g.tp + t;
        if (src >= own) {
            src += 1U;
        }
        uint64_t j = src / g.tp;
        uint64_t s = src % g.tp;
        run.e = r.e0 + el;
        run.row0 = YRow(g, j, s, r.c0);
        run.rows = r.cL;
    } else {
        uint64_t per = g.ep - 1U;
        uint64_t el = idx / per;
        uint64_t j = PeerOfSlot(g, i, idx % per);
        run.e = r.e0 + el;
        run.row0 = YRow(g, j, 0U, r.c0);
        run.rows = r.cL;
    }
    return run;
}

/* element offsets used by a run */
AAG_FN uint64_t RunAOff(const Geom &g, const Run &r) { return Y2Off(g, r.e, r.row0, 0U); }
AAG_FN uint64_t RunYOff(const Geom &g, const Run &r) { return (r.e * g.ep * g.C + r.row0) * g.N; }
AAG_FN uint64_t RunWOff(const Geom &g, const Run &r) { return r.e * g.H * g.N; }   // both layouts
AAG_FN uint64_t RunBiasOff(const Geom &g, const Run &r) { return r.e * g.N; }     // (El,N) and (El,1,N)

/* weight element (h, n) of expert e: (El, H, N) or, transposed, (El, N, H) */
AAG_FN uint64_t WeightOff(const Geom &g, uint64_t e, uint64_t h, uint64_t n)
{
    return (g.transposeWeight != 0U) ? (e * g.N + n) * g.H + h : (e * g.H + h) * g.N + n;
}

/* ----------------------------------------------------------- tiling key -- */

/* bit 0 shard_type, bit 1 transpose_weight, bit 2 bias, bit 3 y2, bit 4 y3 */
AAG_FN uint64_t TilingKey(uint32_t shard, uint32_t transposeWeight, uint32_t hasBias, uint32_t y2Out, uint32_t y3Out)
{
    return static_cast<uint64_t>((shard & 1U) | ((transposeWeight & 1U) << 1) | ((hasBias & 1U) << 2) |
                                 ((y2Out & 1U) << 3) | ((y3Out & 1U) << 4));
}

}  // namespace aag

#endif  // MOE_MC2_AAG_BMM_OFFSETS_H
