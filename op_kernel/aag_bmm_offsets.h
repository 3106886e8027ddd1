/*
 * aag_bmm_offsets.h — every offset, count and index formula of the fused
 * AlltoAllAllGatherBatchMatMul operator, in one header with no Ascend C type.
 *
 * The Ascend C kernel (op_kernel/aag_bmm_kernel.h), the CPU host twin
 * (tests/cpp/host_twin.cpp) and the cost model (op_host/core/aag_bmm_planner.*)
 * all include this file, so the arithmetic the twin proves on a simulated
 * ep x tp world is the arithmetic the kernel runs and the model prices.
 *
 * Vocabulary (docs/op_alltoall_allgather_bmm.md, "The kernel"):
 *   rank (i, t)  i = index in the ep group, t = index in the tp group
 *   El           local experts = E / ep
 *   Rx, Hx       x.size(1), x.size(2) (rows / columns of one x expert)
 *   C, H, N      C = rows per source ep rank in y (shard 1: Rx*tp, shard 0: Rx)
 *                H = hidden (shard 1: Hx, shard 0: Hx*tp), N = M/tp
 *   cell         (local expert e, x row c), numbered e*Rx + c; there are El*Rx
 *   tile k       a contiguous range [TileBegin, TileEnd) of cells. Tile k is
 *                exchanged by one AlltoAllV over ep (every peer, this rank
 *                included, sends the tile's cells of this rank's experts: for
 *                peer j they are contiguous in x because x is (j*El + e, c)
 *                row-major) and one AllGather over tp of that receive buffer.
 *                Its AllGather receive buffer holds, for every source (s, j),
 *                the tile's cells as contiguous rows: [s][j][cell][Hx].
 *   segment      the cells of one expert inside a tile: (e, c0, cL)
 *   block        the rows of one source inside a segment: shard 1 (s, j),
 *                shard 0 j (all tp slices side by side after the assemble)
 *   unit         one matmul call: unitM rows of one block x unitN columns of N
 *                (the last ones shorter), K = H, weight of expert e
 *   phase        shard 1 splits a tile's blocks by when their rows are there:
 *                own   the block (t, i), this rank's own rows: read in place
 *                      from x, no communication needed;
 *                peer  the blocks (t, j), j != i: the rows this rank's
 *                      AlltoAllV received (its own tp slot), read in place from
 *                      the AlltoAllV receive buffer once that collective is
 *                      done, while the tile's AllGather is still in flight
 *                      (only when the plan splits them off: splitPeer);
 *                far   the blocks (s, j), s != t: the rows of the tp peers,
 *                      read from the AllGather receive buffer; without
 *                      splitPeer also the peer blocks, from there too (one
 *                      pass over each weight panel per tile, which matters
 *                      when an expert's weight hardly fits the L2).
 *                shard 0 has only the far phase (every block needs the tp
 *                column slices of all ranks, assembled after the AllGather).
 *   step         one (tile, phase) of the kernel's order (NextStep): the own
 *                rows of tiles up to k + ownAhead, then (splitPeer) the peer
 *                rows of tiles up to k + peerAhead, then tile k's far rows;
 *                k = 0, 1, ...
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

/* tiles per call: each costs one AlltoAllV (group_ep client) and one group sync + AllGather
 * (group_tp client); 16 keeps the tp client at 2*16 + 1 = 33 of HCCL's 64 messages and both
 * clients far below its 63 Prepare calls (the HCCL kernel API's limits). */
constexpr uint32_t kMaxTiles = 16U;
constexpr uint32_t kMaxWorld = 16U;
constexpr uint64_t kNone = ~static_cast<uint64_t>(0);

/* Geometry + plan: a plain struct of fixed-width integers. The host tiling
 * fills it (op_host/core), the kernel reads it from the tiling data, the twin
 * and the cost model build it with the same planner. */
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
    uint64_t tileEnd[kMaxTiles];  // exclusive end cell of tile k (k < nTiles); tileEnd[nTiles-1] = El*Rx
    uint32_t nTiles;       // 1..kMaxTiles
    uint32_t aivNum;       // vector cores of the launch (2 per cube core): units are dealt round robin
    uint32_t unitM;        // matmul unit rows (multiple of 16)
    uint32_t unitN;        // matmul unit columns (multiple of 16)
    uint32_t ring;         // 1: units go to an fp32 ring and the vector cores finish them (epilogue)
    uint32_t biasInCube;   // 1: the bias is added by the matmul (Matmul::SetBias)
    uint32_t epiRows;      // epilogue rows per Unified Buffer chunk
    uint32_t transposeWeight;
    uint32_t hasBias;
    uint32_t y2Out;        // y2 is a real output
    uint32_t y3Out;        // y3 is a real output (flag && act != 0)
    uint32_t ownAhead;     // shard 1: the own rows of tiles up to k + ownAhead are done before tile k's far rows
    uint32_t splitPeer;    // shard 1: 1 the peer rows are a phase of their own (from the AlltoAllV receive buffer)
    uint32_t peerAhead;    // shard 1, splitPeer: the peer rows of tiles up to k + peerAhead before tile k's far rows
};

AAG_FN uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1U) / a * a; }
AAG_FN uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1U) / b; }
AAG_FN uint64_t MinU(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* ---------------------------------------------------------------- tiles -- */

AAG_FN uint64_t Cells(const Geom &g) { return g.El * g.Rx; }
AAG_FN uint32_t NumTiles(const Geom &g) { return g.nTiles; }
AAG_FN uint64_t TileBegin(const Geom &g, uint32_t k) { return k == 0U ? 0U : g.tileEnd[k - 1U]; }
AAG_FN uint64_t TileEnd(const Geom &g, uint32_t k) { return g.tileEnd[k]; }
AAG_FN uint64_t TileCells(const Geom &g, uint32_t k) { return TileEnd(g, k) - TileBegin(g, k); }

/* the experts a tile touches, one segment each */
struct Segment {
    uint64_t e;      // local expert
    uint64_t c0;     // first x row
    uint64_t cL;     // rows
    uint64_t cell0;  // e * Rx + c0
};

AAG_FN uint64_t NumSegments(const Geom &g, uint32_t k)
{
    return (TileEnd(g, k) - 1U) / g.Rx - TileBegin(g, k) / g.Rx + 1U;
}

AAG_FN Segment SegmentAt(const Geom &g, uint32_t k, uint64_t q)
{
    Segment s;
    const uint64_t b = TileBegin(g, k), end = TileEnd(g, k);
    s.e = b / g.Rx + q;
    const uint64_t lo = (s.e * g.Rx > b) ? s.e * g.Rx : b;
    const uint64_t hi = ((s.e + 1U) * g.Rx < end) ? (s.e + 1U) * g.Rx : end;
    s.cell0 = lo;
    s.c0 = lo - s.e * g.Rx;
    s.cL = hi - lo;
    return s;
}

/* ------------------------------------------------------ AlltoAllV (ep) -- */

/* elements one rank sends to every peer (itself included) for tile k, and receives from each */
AAG_FN uint64_t A2ABlock(const Geom &g, uint32_t k) { return TileCells(g, k) * g.Hx; }
/* offset inside x of what goes to peer j: x[j*El + e, c] for the tile's cells */
AAG_FN uint64_t A2ASendDispl(const Geom &g, uint32_t k, uint64_t j) { return (j * Cells(g) + TileBegin(g, k)) * g.Hx; }
/* offset of peer j's block inside tile k's AlltoAllV receive buffer */
AAG_FN uint64_t A2ARecvDispl(const Geom &g, uint32_t k, uint64_t j) { return j * A2ABlock(g, k); }
AAG_FN uint64_t A2ATileElems(const Geom &g, uint32_t k) { return static_cast<uint64_t>(g.ep) * A2ABlock(g, k); }
/* tile k's AlltoAllV receive buffer inside the a2a region (prefix sums of the tiles) */
AAG_FN uint64_t A2ATileOff(const Geom &g, uint32_t k) { return static_cast<uint64_t>(g.ep) * TileBegin(g, k) * g.Hx; }

/* --------------------------------------------------------- AllGather (tp) -- */

/* the AllGather sends tile k's whole AlltoAllV receive buffer */
AAG_FN uint64_t AGSendCount(const Geom &g, uint32_t k) { return A2ATileElems(g, k); }
AAG_FN uint64_t AGTileOff(const Geom &g, uint32_t k)
{
    return static_cast<uint64_t>(g.tp) * g.ep * TileBegin(g, k) * g.Hx;
}
/* element offset (in the ag region) of source (s, j)'s row of `cell` in tile k */
AAG_FN uint64_t AGRowOff(const Geom &g, uint32_t k, uint64_t s, uint64_t j, uint64_t cell)
{
    return AGTileOff(g, k) + ((s * g.ep + j) * TileCells(g, k) + (cell - TileBegin(g, k))) * g.Hx;
}

/* ------------------------------------------------------------ y indexing -- */

/* y row (inside the (El, ep*C) row space of y1 / y2 / y3) of x row c of expert e from source (j, s) */
AAG_FN uint64_t YRow(const Geom &g, uint64_t e, uint64_t j, uint64_t s, uint64_t c)
{
    return e * g.ep * g.C + j * g.C + ((g.shard == 1U) ? s * g.Rx : 0U) + c;
}

/* weight element (h, n) of expert e: (El, H, N) or, transposed, (El, N, H) */
AAG_FN uint64_t WeightOff(const Geom &g, uint64_t e, uint64_t h, uint64_t n)
{
    return (g.transposeWeight != 0U) ? (e * g.N + n) * g.H + h : (e * g.H + h) * g.N + n;
}

/* ---------------------------------------------------------------- blocks -- */

/* blocks per segment: shard 1 every source (s, j); shard 0 every source ep rank j */
AAG_FN uint64_t NumBlocks(const Geom &g)
{
    return (g.shard == 1U) ? static_cast<uint64_t>(g.ep) * g.tp : static_cast<uint64_t>(g.ep);
}
/* shard 1: block b = s * ep + j; the own block of rank (i, t) */
AAG_FN uint64_t OwnBlock(const Geom &g, uint64_t i, uint64_t t) { return t * g.ep + i; }

/* ----------------------------------------------------------- phases, steps -- */

constexpr uint32_t kOwnRows = 0U;
constexpr uint32_t kPeerRows = 1U;
constexpr uint32_t kFarRows = 2U;

/* blocks of one segment in a phase */
AAG_FN uint64_t PhaseBlocks(const Geom &g, uint32_t phase)
{
    if (g.shard != 1U) {
        return (phase == kFarRows) ? static_cast<uint64_t>(g.ep) : 0U;
    }
    if (phase == kOwnRows) {
        return 1U;
    }
    if (g.splitPeer == 0U) {  // no peer phase: every block but the own one is far
        return (phase == kPeerRows) ? 0U : static_cast<uint64_t>(g.tp) * g.ep - 1U;
    }
    return (phase == kPeerRows) ? static_cast<uint64_t>(g.ep) - 1U : static_cast<uint64_t>(g.tp - 1U) * g.ep;
}

/* the b-th block (0 <= b < PhaseBlocks) of a phase on rank (i, t), as a block number of NumBlocks */
AAG_FN uint64_t PhaseBlock(const Geom &g, uint64_t i, uint64_t t, uint32_t phase, uint64_t b)
{
    if (g.shard != 1U) {
        return b;
    }
    if (phase == kOwnRows) {
        return OwnBlock(g, i, t);
    }
    if (phase == kPeerRows) {
        return t * g.ep + ((b < i) ? b : b + 1U);  // (t, j), j != i
    }
    if (g.splitPeer == 0U) {
        return (b < OwnBlock(g, i, t)) ? b : b + 1U;  // every block but the own one
    }
    const uint64_t s = b / g.ep;
    return ((s < t) ? s : s + 1U) * g.ep + b % g.ep;  // (s, j), s != t
}

/* One step of the kernel's order: the phase `phase` of tile k. */
struct Step {
    uint32_t k;
    uint32_t phase;
};

/* where the order stands: the next tile whose far rows are due, and the next tiles whose own / peer
 * rows are still to do */
struct StepCursor {
    uint32_t k;
    uint32_t ownNext;
    uint32_t peerNext;
};

AAG_FN StepCursor FirstStep() { return StepCursor{0U, 0U, 0U}; }

AAG_FN uint32_t AheadOf(const Geom &g, uint32_t k, uint32_t ahead)
{
    return (k + ahead < g.nTiles) ? k + ahead : g.nTiles - 1U;
}

/* the next step of the order into *st; false after the last. The kernel, the host twin and the cost
 * model all walk this one sequence. */
AAG_FN bool NextStep(const Geom &g, StepCursor &c, Step *st)
{
    if (c.k >= g.nTiles) {
        return false;
    }
    if (g.shard == 1U) {
        if (c.ownNext <= AheadOf(g, c.k, g.ownAhead)) {
            st->k = c.ownNext++;
            st->phase = kOwnRows;
            return true;
        }
        if (g.splitPeer != 0U && c.peerNext <= AheadOf(g, c.k, g.peerAhead)) {
            st->k = c.peerNext++;
            st->phase = kPeerRows;
            return true;
        }
    }
    st->k = c.k++;
    st->phase = kFarRows;
    return true;
}

/* ------------------------------------------------------------------ units -- */

AAG_FN uint64_t NumPanels(const Geom &g) { return CeilDiv(g.N, g.unitN); }
AAG_FN uint64_t NumChunks(const Geom &g, uint64_t rows) { return CeilDiv(rows, g.unitM); }

/* A unit of segment seg, block blk, column panel p, row chunk m. */
struct Unit {
    uint64_t e;
    uint64_t m0, tm;   // rows [m0, m0 + tm) of the block
    uint64_t n0, tn;   // columns [n0, n0 + tn) of N
    uint32_t aSrc;     // kSrcX, kSrcAg, kSrcAssembled or kSrcA2a
    uint64_t aOff;     // element offset of the unit's first A row in that source (row stride H)
    uint64_t yRow;     // first y1 / y3 row (row stride N)
};

constexpr uint32_t kSrcX = 0U;          // x (the own block)
constexpr uint32_t kSrcAg = 1U;         // the ag region (far blocks)
constexpr uint32_t kSrcAssembled = 2U;  // shard 0: y2 or the workspace's asm slot
constexpr uint32_t kSrcA2a = 3U;        // the a2a region (peer blocks)

/* Units of a phase of tile k in the order the kernel deals them: for each segment, for each panel,
 * for each block of the phase, for each row chunk. Panel-major inside a segment: the weight panel
 * stays hot in L2 while every block uses it. */
AAG_FN uint64_t PhaseUnitsOfSegment(const Geom &g, uint32_t phase, uint64_t cL)
{
    return NumPanels(g) * PhaseBlocks(g, phase) * NumChunks(g, cL);
}

/* the row source of block blk of segment sg of tile k on rank (i, t): the first buffer that holds it */
AAG_FN Unit MakeUnit(const Geom &g, uint64_t i, uint64_t t, uint32_t k, const Segment &sg, uint64_t blk, uint64_t p,
                     uint64_t m)
{
    Unit u;
    u.e = sg.e;
    u.m0 = m * g.unitM;
    u.tm = MinU(g.unitM, sg.cL - u.m0);
    u.n0 = p * g.unitN;
    u.tn = MinU(g.unitN, g.N - u.n0);
    if (g.shard == 1U) {
        const uint64_t s = blk / g.ep, j = blk % g.ep;
        u.yRow = YRow(g, sg.e, j, s, sg.c0 + u.m0);
        if (blk == OwnBlock(g, i, t)) {
            u.aSrc = kSrcX;
            u.aOff = ((i * g.El + sg.e) * g.Rx + sg.c0 + u.m0) * g.Hx;
        } else if (s == t && g.splitPeer != 0U) {
            u.aSrc = kSrcA2a;
            u.aOff = A2ATileOff(g, k) + A2ARecvDispl(g, k, j) + (sg.cell0 + u.m0 - TileBegin(g, k)) * g.Hx;
        } else {
            u.aSrc = kSrcAg;
            u.aOff = AGRowOff(g, k, s, j, sg.cell0 + u.m0);
        }
    } else {
        const uint64_t j = blk;
        u.yRow = YRow(g, sg.e, j, 0U, sg.c0 + u.m0);
        u.aSrc = kSrcAssembled;
        // assembled rows: y2 itself (row yRow) or the asm slot ([j][tile cell][H])
        u.aOff = (g.y2Out != 0U) ? u.yRow * g.H
                                 : (j * TileCells(g, k) + (sg.cell0 - TileBegin(g, k)) + u.m0) * g.H;
    }
    return u;
}

/* unit idx (0 <= idx < PhaseUnitsOfSegment) of a phase */
AAG_FN Unit PhaseUnit(const Geom &g, uint64_t i, uint64_t t, uint32_t k, const Segment &sg, uint32_t phase,
                      uint64_t idx)
{
    const uint64_t mc = NumChunks(g, sg.cL);
    const uint64_t nb = PhaseBlocks(g, phase);
    const uint64_t p = idx / (nb * mc);
    const uint64_t rem = idx % (nb * mc);
    return MakeUnit(g, i, t, k, sg, PhaseBlock(g, i, t, phase, rem / mc), p, rem % mc);
}

/* Units are dealt round robin by their global position p (counted over all tiles and phases):
 * seat s = p % aivNum, and seat s belongs to vector core (s % aicNum) * 2 + s / aicNum, so
 * consecutive units go to different cube cores first (vector cores 2c and 2c+1 share cube core c). */
AAG_FN uint64_t SeatOf(uint64_t aiv, uint64_t aivNum) { return (aiv % 2U) * (aivNum / 2U) + aiv / 2U; }

/* the first index >= 0 of a run of units starting at global position `base` that is vector core aiv's */
AAG_FN uint64_t FirstMine(uint64_t base, uint64_t aiv, uint64_t aivNum)
{
    return (SeatOf(aiv, aivNum) + aivNum - base % aivNum) % aivNum;
}

/* ------------------------------------------------- copies: y2 and assemble -- */

/* A copy piece moves `rows` rows of Hx elements from a contiguous source to
 * destination rows `dstPitch` apart starting at column dstCol. */
struct Piece {
    uint32_t srcKind;  // 0: x, 1: the ag region
    uint64_t srcOff;
    uint32_t dstKind;  // 0: y2, 1: the asm slot
    uint64_t dstOff;   // element offset of the first row's first column
    uint64_t rows;
};

/* shard 1 (y2 only): for each segment every block (s, j) is cL contiguous rows in the source (x for
 * the own block, the ag region otherwise) and in y2. shard 0 (the assemble of tile k): for each
 * segment, every (s, j): cL rows of Hx into columns s*Hx.. of the assembled rows. */
AAG_FN uint64_t PiecesPerSegment(const Geom &g) { return static_cast<uint64_t>(g.ep) * g.tp; }

AAG_FN Piece PieceAt(const Geom &g, uint64_t i, uint64_t t, uint32_t k, const Segment &sg, uint64_t b)
{
    Piece pc;
    const uint64_t s = b / g.ep, j = b % g.ep;
    pc.rows = sg.cL;
    if (g.shard == 1U && s == t && j == i) {
        pc.srcKind = 0U;
        pc.srcOff = ((i * g.El + sg.e) * g.Rx + sg.c0) * g.Hx;
    } else {
        pc.srcKind = 1U;
        pc.srcOff = AGRowOff(g, k, s, j, sg.cell0);
    }
    const uint64_t col = (g.shard == 1U) ? 0U : s * g.Hx;
    if (g.shard == 1U || g.y2Out != 0U) {
        pc.dstKind = 0U;
        pc.dstOff = YRow(g, sg.e, j, s, sg.c0) * g.H + col;
    } else {
        pc.dstKind = 1U;
        pc.dstOff = (j * TileCells(g, k) + (sg.cell0 - TileBegin(g, k))) * g.H + col;
    }
    return pc;
}

/* ------------------------------------------------------ workspace layout -- */

struct WsLayout {
    uint64_t a2aOff;      // elements (x dtype) from the start of the user workspace
    uint64_t a2aElems;
    uint64_t agOff;
    uint64_t agElems;
    uint64_t asmOff;      // shard 0 without y2: the assembled rows of one tile
    uint64_t asmElems;
    uint64_t ringOffBytes;  // fp32 ring: 2 slots of unitM x unitN per vector core
    uint64_t ringFloats;
    uint64_t totalBytes;
};

AAG_FN uint64_t MaxTileCells(const Geom &g)
{
    uint64_t m = 0;
    for (uint32_t k = 0; k < g.nTiles; ++k) {
        m = (TileCells(g, k) > m) ? TileCells(g, k) : m;
    }
    return m;
}

AAG_FN uint64_t RingSlotFloats(const Geom &g) { return static_cast<uint64_t>(g.unitM) * g.unitN; }
AAG_FN uint64_t RingSlotOff(const Geom &g, uint64_t aiv, uint64_t slot) { return (aiv * 2U + slot) * RingSlotFloats(g); }

/* workspace in units of one element of x (elemBytes), then the fp32 ring; regions 512-byte aligned */
AAG_FN WsLayout Workspace(const Geom &g, uint64_t elemBytes)
{
    WsLayout w;
    const uint64_t align = 512U / elemBytes;
    w.a2aOff = 0U;
    w.a2aElems = static_cast<uint64_t>(g.ep) * Cells(g) * g.Hx;
    w.agOff = AlignUp(w.a2aOff + w.a2aElems, align);
    w.agElems = static_cast<uint64_t>(g.tp) * w.a2aElems;
    w.asmOff = AlignUp(w.agOff + w.agElems, align);
    w.asmElems = (g.shard == 0U && g.y2Out == 0U) ? static_cast<uint64_t>(g.ep) * MaxTileCells(g) * g.H : 0U;
    w.ringOffBytes = AlignUp(w.asmOff + w.asmElems, align) * elemBytes;
    w.ringFloats = (g.ring != 0U) ? static_cast<uint64_t>(g.aivNum) * 2U * RingSlotFloats(g) : 0U;
    w.totalBytes = AlignUp(w.ringOffBytes + w.ringFloats * 4U, 512U);
    return w;
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
