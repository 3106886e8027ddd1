#include "aag_bmm_planner.h"

#include <algorithm>
#include <cmath>

namespace moe_mc2 {

namespace {

using aag::AlignUp;
using aag::CeilDiv;

uint64_t A16(uint64_t v) { return AlignUp(v, 16U); }
double D(uint64_t v) { return static_cast<double>(v); }

/* sum over the chunks of `len` split into pieces of `piece` of AlignUp(chunk, 16) */
uint64_t SumAligned16(uint64_t len, uint64_t piece)
{
    const uint64_t full = len / piece, tail = len % piece;
    return full * A16(piece) + (tail ? A16(tail) : 0U);
}

/* units of a run of `cnt` consecutive global positions starting at `base` that vector core a gets */
uint64_t UnitsOf(uint64_t base, uint64_t cnt, uint64_t a, uint64_t aivNum)
{
    const uint64_t first = aag::FirstMine(base, a, aivNum);
    return first < cnt ? (cnt - first + aivNum - 1U) / aivNum : 0U;
}

uint32_t BiasBytes(const Args &a) { return a.hasBias ? DTypeBytes(a.biasDtype) : 0U; }

bool VecBias(const Args &a) { return a.hasBias && a.biasDtype == DType::kBFloat16; }

/* load of every cube / vector core in one part of a tile */
struct Loads {
    std::vector<double> cube, vec, units;
    explicit Loads(const Machine &m) : cube(m.aicNum, 0.0), vec(m.aivNum, 0.0), units(m.aicNum, 0.0) {}
    void AddRun(uint64_t base, uint64_t cnt, double cubeTotal, double vecTotal, const Machine &m)
    {
        if (cnt == 0U) return;
        for (uint64_t a = 0; a < m.aivNum; ++a) {
            const uint64_t n = UnitsOf(base, cnt, a, m.aivNum);
            if (n == 0U) continue;
            cube[a / 2U] += cubeTotal * D(n) / D(cnt);
            vec[a] += vecTotal * D(n) / D(cnt);
            units[a / 2U] += D(n);
        }
    }
    /* the cube cores' clocks run on from `clock`; a core starts the part at `ready` at the earliest and
     * takes the longest of its cube work, its vector cores' work and its share of the part's HBM / L2
     * traffic (bandwidth shared by all cores: the busiest core sees the whole shared time). Returns the
     * part's [first start, last end]. */
    std::pair<double, double> Advance(std::vector<double> &clock, double ready, double shared) const
    {
        double maxUnits = 0;
        for (double u : units) maxUnits = std::max(maxUnits, u);
        double first = -1, last = 0;
        for (size_t c = 0; c < clock.size(); ++c) {
            if (units[c] == 0.0) continue;
            const double vc = std::max(vec[2 * c], vec[2 * c + 1]);
            const double tcore = std::max(std::max(cube[c], vc), shared * units[c] / maxUnits);
            const double start = std::max(clock[c], ready);
            clock[c] = start + tcore;
            first = first < 0 ? start : std::min(first, start);
            last = std::max(last, clock[c]);
        }
        if (first < 0) {  // no unit in this part
            first = ready;
            last = ready;
        }
        return {first, last};
    }
    double MaxCube() const { return cube.empty() ? 0.0 : *std::max_element(cube.begin(), cube.end()); }
    double MaxVec() const { return vec.empty() ? 0.0 : *std::max_element(vec.begin(), vec.end()); }
};

}  // namespace

double PartTime::Time() const { return std::max(std::max(cube, vector), std::max(hbm, l2)) + fixed; }

void Bytes::Add(const Bytes &o)
{
    gmData += o.gmData;
    gmWorkspace += o.gmWorkspace;
    hbmDataRead += o.hbmDataRead;
    hbmDataWrite += o.hbmDataWrite;
    hbmWorkspace += o.hbmWorkspace;
    commRead += o.commRead;
    commWrite += o.commWrite;
}

/* ----------------------------------------------------------- sizes, UB */

uint32_t KernelUbBufferBytes(uint64_t ubBytes) { return static_cast<uint32_t>(ubBytes / 4U * 3U / 32U * 32U); }

uint32_t CopyUbBytes(uint64_t ubBytes)
{
    const uint64_t half = std::min<uint64_t>(ubBytes / 12U, 16U * 1024U);
    return static_cast<uint32_t>(half / 32U * 32U);
}

uint32_t EpilogueRows(const aag::Geom &g, uint32_t elemBytes, uint32_t biasBytes, uint64_t ubBytes)
{
    if (g.ring == 0U) return 0U;
    const bool vecBias = g.hasBias != 0U && g.biasInCube == 0U;
    int64_t budget = KernelUbBufferBytes(ubBytes);
    if (g.y2Out != 0U || g.shard == 0U) budget -= 2 * static_cast<int64_t>(CopyUbBytes(ubBytes));
    if (vecBias) budget -= static_cast<int64_t>(g.unitN) * (biasBytes + 4);
    const uint64_t perRow = static_cast<uint64_t>(g.unitN) *
                            (2U * 4U + 2U * elemBytes + (g.y3Out ? 2U * elemBytes : 0U) + 4U + (vecBias ? 4U : 0U));
    const uint64_t rows = budget > 0 ? static_cast<uint64_t>(budget) / perRow : 0U;
    return static_cast<uint32_t>(std::max<uint64_t>(1U, std::min<uint64_t>(rows, g.unitM)));
}

uint32_t EpilogueOpsPerElem(int64_t act, bool y3, bool vecBias)
{
    // the vector instructions the epilogue issues per element (op_kernel/aag_bmm_kernel.h, Epilogue;
    // the activations' sequences are the Ascend C APIs' as the CPU model implements them)
    uint32_t ops = 1U;  // the Cast of y1
    if (vecBias) ops += 1U;
    if (y3) ops += 1U;
    switch (act) {
        case 1: ops += 13U; break;  // Gelu
        case 2: ops += 4U; break;   // Silu
        case 3: ops += 1U; break;   // Relu
        case 4: ops += 4U; break;   // FasterGelu
        default: break;
    }
    return ops;
}

uint64_t WorkspaceBytes(const aag::Geom &g, uint32_t elemBytes) { return aag::Workspace(g, elemBytes).totalBytes; }

uint64_t TilingKeyOf(const Args &a)
{
    Dims d = DeriveDims(a);
    return aag::TilingKey(static_cast<uint32_t>(d.shard), a.transposeWeight ? 1U : 0U, a.hasBias ? 1U : 0U,
                          d.y2Out ? 1U : 0U, d.y3Out ? 1U : 0U);
}

/* -------------------------------------------------------------- geometry */

aag::Geom MakeGeom(const Args &a, const std::vector<uint64_t> &tileEnds, const Machine &m)
{
    Dims d = DeriveDims(a);
    aag::Geom g{};
    g.ep = static_cast<uint32_t>(d.ep);
    g.tp = static_cast<uint32_t>(d.tp);
    g.shard = static_cast<uint32_t>(d.shard);
    g.act = static_cast<uint32_t>(d.act);
    g.E = static_cast<uint64_t>(d.E);
    g.El = static_cast<uint64_t>(d.El);
    g.Rx = static_cast<uint64_t>(d.Rx);
    g.Hx = static_cast<uint64_t>(d.Hx);
    g.C = static_cast<uint64_t>(d.C);
    g.H = static_cast<uint64_t>(d.H);
    g.N = static_cast<uint64_t>(d.N);
    g.nTiles = static_cast<uint32_t>(std::min<size_t>(tileEnds.size(), aag::kMaxTiles));
    for (uint32_t k = 0; k < g.nTiles; ++k) g.tileEnd[k] = tileEnds[k];
    g.aivNum = m.aivNum;
    g.transposeWeight = a.transposeWeight ? 1U : 0U;
    g.hasBias = a.hasBias ? 1U : 0U;
    g.y2Out = d.y2Out ? 1U : 0U;
    g.y3Out = d.y3Out ? 1U : 0U;
    g.biasInCube = (a.hasBias && !VecBias(a)) ? 1U : 0U;
    g.ring = (d.act != 0 || d.y3Out || VecBias(a)) ? 1U : 0U;
    // units: the direct path (C in x's dtype) takes 256 x 512; the ring path 128 x 256 (a 128 KiB
    // fp32 slot, two per vector core, and an epilogue chunk that fits the Unified Buffer)
    g.unitM = m.unitM ? static_cast<uint32_t>(A16(m.unitM)) : (g.ring ? 128U : 256U);
    g.unitN = static_cast<uint32_t>(std::min<uint64_t>(m.unitN ? A16(m.unitN) : (g.ring ? 256U : 512U), A16(g.N)));
    g.epiRows = EpilogueRows(g, DTypeBytes(a.xDtype), BiasBytes(a), m.ubBytes);
    if (m.epiRows && g.ring) g.epiRows = std::min<uint32_t>(m.epiRows, g.epiRows);
    auto ahead = [&g](int32_t v) {
        return (g.shard == 1U && v > 0) ? std::min<uint32_t>(static_cast<uint32_t>(v), aag::kMaxTiles) : 0U;
    };
    g.ownAhead = ahead(m.ownAhead);
    g.splitPeer = (g.shard == 1U && (m.splitPeer > 0 || (m.splitPeer < 0 && m.peerAhead >= 0))) ? 1U : 0U;
    g.peerAhead = g.splitPeer ? ahead(m.peerAhead) : 0U;
    return g;
}

std::vector<uint64_t> UniformTiles(const Dims &d, uint64_t eTile, uint64_t cTile)
{
    const uint64_t El = static_cast<uint64_t>(d.El), Rx = static_cast<uint64_t>(d.Rx);
    std::vector<uint64_t> ends;
    if (eTile < 1U || eTile > El || cTile < 1U || cTile > Rx || (cTile < Rx && eTile != 1U)) return ends;
    if (cTile == Rx) {
        for (uint64_t e = eTile; ; e += eTile) {
            ends.push_back(std::min(e, El) * Rx);
            if (e >= El) break;
        }
    } else {
        for (uint64_t e = 0; e < El; ++e)
            for (uint64_t c = cTile; ; c += cTile) {
                ends.push_back(e * Rx + std::min(c, Rx));
                if (c >= Rx) break;
            }
    }
    if (ends.size() > aag::kMaxTiles) ends.clear();
    return ends;
}

bool TileShapeLegal(const Dims &d, uint64_t eTile, uint64_t cTile) { return !UniformTiles(d, eTile, cTile).empty(); }

/* ------------------------------------------------------------ the model */

namespace {

/* the L2 lines of the fp32 ring the units write (each vector core alternates its two slots, in the
 * kernel's order, from slot 0 again after every Drain of shard 0): a slot's dirty lines are the union of
 * its units' tm x tn corners, rows unitN floats apart */
uint64_t RingLines(const aag::Geom &g, const Machine &m, uint64_t line)
{
    std::vector<std::vector<uint32_t>> width(static_cast<size_t>(m.aivNum) * 2U, std::vector<uint32_t>(g.unitM, 0U));
    std::vector<int> slot(m.aivNum, -1);  // -1: nothing in flight
    uint64_t pos = 0;
    auto deal = [&](const aag::Unit &u) {
        const uint64_t seat = pos % m.aivNum;
        const uint64_t aiv = (seat % (m.aivNum / 2U)) * 2U + seat / (m.aivNum / 2U);
        ++pos;
        const int s = slot[aiv] < 0 ? 0 : 1 - slot[aiv];
        slot[aiv] = s;
        auto &w = width[aiv * 2U + static_cast<uint64_t>(s)];
        for (uint64_t r = 0; r < u.tm; ++r) w[r] = std::max<uint32_t>(w[r], static_cast<uint32_t>(u.tn));
    };
    aag::StepCursor cur = aag::FirstStep();
    aag::Step st{};
    while (aag::NextStep(g, cur, &st)) {
        if (g.shard == 0U) std::fill(slot.begin(), slot.end(), -1);  // Drain at the tile's start
        for (uint64_t q = 0; q < aag::NumSegments(g, st.k); ++q) {
            const aag::Segment sg = aag::SegmentAt(g, st.k, q);
            for (uint64_t u = 0; u < aag::PhaseUnitsOfSegment(g, st.phase, sg.cL); ++u)
                deal(aag::PhaseUnit(g, 0, 0, st.k, sg, st.phase, u));
        }
    }
    uint64_t lines = 0;
    const uint64_t rowBytes = static_cast<uint64_t>(g.unitN) * 4U;
    for (const auto &w : width) {
        uint64_t last = ~static_cast<uint64_t>(0);
        for (uint64_t r = 0; r < w.size(); ++r) {
            if (w[r] == 0U) continue;
            const uint64_t b0 = r * rowBytes, b1 = b0 + w[r] * 4U - 1U;
            for (uint64_t l = b0 / line; l <= b1 / line; ++l) {
                if (l != last) ++lines;  // rows only grow, so a line repeats only as the previous one
                last = l;
            }
        }
    }
    return lines;
}

}  // namespace

Prediction Evaluate(const Args &a, const aag::Geom &g, const Machine &m, const CostConstants &cc, bool exactWorkspace)
{
    Prediction p;
    p.schedule = "this kernel";
    const uint64_t eb = DTypeBytes(a.xDtype), beb = BiasBytes(a);
    const uint64_t ceb = g.ring ? 4U : eb;
    const uint64_t line = cc.mem.l2LineBytes;
    const double cap = D(cc.mem.l2Bytes);
    const bool vecBias = g.hasBias != 0U && g.biasInCube == 0U;
    const uint32_t ops = EpilogueOpsPerElem(g.act, g.y3Out != 0U, vecBias);
    const uint64_t P = aag::NumPanels(g);
    const uint64_t sumTn16 = SumAligned16(g.N, g.unitN);
    const uint64_t K16 = A16(g.H);
    const uint64_t rowBytesA = g.H * eb;
    const uint64_t outs = 1U + (g.y3Out ? 1U : 0U);
    const bool asmInWs = (g.shard == 0U && g.y2Out == 0U);
    const uint64_t nb = aag::NumBlocks(g);
    const double coreFlops = cc.cubeFlopsPerSec / D(m.aicNum);
    uint64_t base = 0;
    uint64_t maxTm = 0;
    std::vector<uint64_t> unitsPerAiv(m.aivNum, 0);
    // L2 reuse: the bytes the cores have touched so far, and when each expert's weight / bias was last used
    double touched = 0;
    std::vector<double> wLast(g.El, -1.0);
    p.tiles.resize(g.nTiles);

    /* one step of the kernel's order (a phase of tile k) */
    auto phase = [&](uint32_t k, uint32_t ph, Loads &ld, Bytes &b) {
        const uint64_t nseg = aag::NumSegments(g, k);
        const uint64_t blocks = aag::PhaseBlocks(g, ph);
        double footprint = 0;
        for (uint64_t q = 0; q < nseg && blocks > 0U; ++q) {
            const aag::Segment sg = aag::SegmentAt(g, k, q);
            const uint64_t mc = aag::NumChunks(g, sg.cL);
            const uint64_t cnt = P * blocks * mc;
            const uint64_t rows = blocks * sg.cL;
            // cube: 16-aligned FLOPs of every unit, on the cube core that runs it
            const double flops = 2.0 * D(K16) * D(blocks) * D(SumAligned16(sg.cL, g.unitM)) * D(sumTn16);
            const double cubeT = flops / coreFlops + D(cnt) * cc.matmulCallSec;
            uint64_t vops = 0;
            if (g.ring) vops = ops * rows * sumTn16 + (vecBias ? blocks * mc * sumTn16 : 0U);
            ld.AddRun(base, cnt, cubeT, D(vops) / cc.vecElemOpsPerSec, m);
            for (uint64_t av = 0; av < m.aivNum; ++av) unitsPerAiv[av] += UnitsOf(base, cnt, av, m.aivNum);
            base += cnt;
            p.tiles[k].cubeFlops += flops;
            p.cubeFlops += flops;
            p.cubeFlopsExact += 2.0 * D(rows) * D(g.H) * D(g.N);
            p.matmulCalls += cnt;
            p.vectorElemOps += vops;
            maxTm = std::max(maxTm, std::min<uint64_t>(g.unitM, sg.cL));
            // GM level: A per panel, the weight panel per unit, C, the bias per unit, the epilogue
            const uint64_t gmA = P * rows * rowBytesA;
            (asmInWs ? b.gmWorkspace : b.gmData) += gmA;
            b.gmData += blocks * mc * g.H * g.N * eb;
            (g.ring ? b.gmWorkspace : b.gmData) += rows * g.N * ceb;
            if (g.biasInCube) b.gmData += blocks * mc * g.N * beb;
            if (g.ring) {
                b.gmWorkspace += rows * g.N * 4U;    // the epilogue reads the ring
                b.gmData += outs * rows * g.N * eb;  // y1 (y3)
                if (vecBias) b.gmData += blocks * mc * g.N * beb;
            }
            // HBM level. A: once (shard 0: read by the assemble); again on every panel when the segment's
            // rows, a weight panel and a column strip of its outputs do not stay in L2 together
            if (g.shard == 1U) b.hbmDataRead += rows * rowBytesA;
            const uint64_t segA = nb * sg.cL * rowBytesA;
            const uint64_t segDist = segA + g.H * g.unitN * eb + nb * sg.cL * g.unitN * ceb;
            if (P > 1U && D(segDist) > cap) b.hbmDataRead += (P - 1U) * rows * rowBytesA;
            // the weight (and bias): from HBM on first use, or when the bytes touched since its last use
            // exceed the L2
            // (panel p was last used about one segment's footprint ago: the distance counts from the start
            // of the weight's previous use)
            const uint64_t wBytes = g.H * g.N * eb;
            const double last = wLast[sg.e];
            if (last < 0.0 || touched + footprint - last > cap) {
                b.hbmDataRead += wBytes;
                if (g.hasBias) b.hbmDataRead += AlignUp(g.N * beb, line);
            }
            wLast[sg.e] = touched + footprint;
            footprint += D(wBytes + rows * rowBytesA + outs * rows * g.N * eb);
            b.hbmDataWrite += outs * rows * g.N * eb;
            if (g.shard == 1U && g.y2Out) {  // y2: the first panel's units copy their rows while the cube reads them
                b.gmData += 2U * rows * rowBytesA;
                b.hbmDataWrite += rows * rowBytesA;
                footprint += D(rows * rowBytesA);
            }
        }
        touched += footprint;
    };

    auto part = [&cc](const Loads &ld, const Bytes &b) {
        PartTime pt;
        pt.cube = ld.MaxCube();
        pt.vector = ld.MaxVec();
        pt.hbm = D(b.HbmData() + b.hbmWorkspace) / cc.hbmBytesPerSec;
        pt.l2 = D(b.gmData + b.gmWorkspace) / cc.l2BytesPerSec;
        return pt;
    };
    // ------------------------------------------------------------------- comm: the two streams
    double a2aEnd = 0, agEnd = 0;
    for (uint32_t k = 0; k < g.nTiles; ++k) {
        TileTimeline &tl = p.tiles[k];
        tl.cellBegin = aag::TileBegin(g, k);
        tl.cellEnd = aag::TileEnd(g, k);
        const uint64_t cells = aag::TileCells(g, k);
        const double a2aData = D(cells * g.Hx * eb) / cc.linkBytesPerSec;
        const double agData = D(g.ep * cells * g.Hx * eb) / cc.linkBytesPerSec;
        tl.a2aStart = cc.groupsOverlap ? a2aEnd : std::max(a2aEnd, agEnd);
        tl.a2aEnd = tl.a2aStart + cc.collectiveLatencySec + a2aData;
        tl.agStart = std::max(agEnd, tl.a2aEnd);
        tl.agEnd = tl.agStart + cc.collectiveLatencySec + agData;
        a2aEnd = tl.a2aEnd;
        agEnd = tl.agEnd;
        tl.bytes.commRead = tl.bytes.commWrite = g.ep * cells * g.Hx * eb + g.tp * g.ep * cells * g.Hx * eb;
    }
    // ------------------------------------------------------- compute, in the kernel's order of steps
    std::vector<double> clock(m.aicNum, 0.0);  // each cube core (and its two vector cores) runs on
    aag::StepCursor cur = aag::FirstStep();
    aag::Step st{};
    while (aag::NextStep(g, cur, &st)) {
        TileTimeline &tl = p.tiles[st.k];
        double ready = 0.0;  // own rows: at once
        if (st.phase == aag::kPeerRows) {
            ready = tl.a2aEnd + cc.waitSec;
            ++p.waits;
        } else if (st.phase == aag::kFarRows) {
            ready = tl.agEnd + cc.waitSec;
            ++p.waits;
        }
        if (g.shard == 0U) {
            // Drain, Wait, SyncAll, the assemble on every vector core, SyncAll, then the units
            const uint64_t moved = g.ep * g.tp * aag::TileCells(g, st.k) * g.Hx * eb;
            Bytes bAsm;
            bAsm.gmData += moved;                                 // reads of the ag region
            (asmInWs ? bAsm.gmWorkspace : bAsm.gmData) += moved;  // writes of y2 / the asm slot
            bAsm.hbmDataRead += moved;                            // the units then read the assembled rows
            if (!asmInWs) bAsm.hbmDataWrite += moved;
            tl.own = part(Loads(m), bAsm);
            tl.own.fixed = 2.0 * cc.syncAllSec;
            for (double c : clock) ready = std::max(ready, c);
            tl.ownStart = ready;
            tl.ownEnd = ready + tl.own.Time();
            for (double &c : clock) c = tl.ownEnd;
            ready = tl.ownEnd;
            tl.bytes.Add(bAsm);
            p.computeTotal += tl.own.Time();
            p.syncAlls += 2U;
        }
        Loads ld(m);
        Bytes b;
        phase(st.k, st.phase, ld, b);
        const PartTime pt = part(ld, b);
        const auto r = ld.Advance(clock, ready, std::max(pt.hbm, pt.l2));
        if (g.shard == 1U && st.phase == aag::kOwnRows) {
            tl.own = pt;
            tl.ownStart = r.first;
            tl.ownEnd = r.second;
        } else if (st.phase == aag::kPeerRows) {
            tl.peer = pt;
            tl.peerStart = r.first;
            tl.peerEnd = r.second;
        } else {
            tl.far = pt;
            tl.farStart = r.first;
            tl.farEnd = r.second;
        }
        tl.bytes.Add(b);
        p.computeTotal += pt.Time();
    }
    for (const auto &t : p.tiles) p.bytes.Add(t.bytes);
    // the last unit's epilogue, the final SyncAll
    double t = 0;
    for (double c : clock) t = std::max(t, c);
    if (g.ring && p.matmulCalls > 0U) {
        p.makespan = t + D(p.vectorElemOps) / D(p.matmulCalls) / cc.vecElemOpsPerSec;
    } else {
        p.makespan = t;
    }
    p.makespan += cc.syncAllSec;
    p.syncAlls += 1U;
    p.collectives = 2U * g.nTiles;
    p.commTotal = agEnd;
    // workspace flushed at the end: the lines of the ring slots the vector cores used, the asm slot
    if (g.ring && maxTm > 0U) {
        if (exactWorkspace) {
            p.bytes.hbmWorkspace += RingLines(g, m, line) * line;
        } else {
            const uint64_t slotBytes = AlignUp((maxTm - 1U) * g.unitN * 4U + std::min<uint64_t>(g.unitN, g.N) * 4U, line);
            for (uint64_t n : unitsPerAiv) p.bytes.hbmWorkspace += std::min<uint64_t>(n, 2U) * slotBytes;
        }
    }
    if (asmInWs) p.bytes.hbmWorkspace += AlignUp(g.ep * aag::MaxTileCells(g) * g.H * eb, line);
    // bound: the exchange alone and the matmul alone
    const uint64_t cellsAll = aag::Cells(g);
    const uint64_t rowsAll = g.El * g.ep * g.C;
    p.hbmFloor = rowsAll * g.H * eb + g.El * g.H * g.N * eb + rowsAll * g.N * eb;
    const double a2aAll = D(cellsAll * g.Hx * eb) / cc.linkBytesPerSec;
    const double agAll = D(g.ep * cellsAll * g.Hx * eb) / cc.linkBytesPerSec;
    p.commIdeal = 2.0 * cc.collectiveLatencySec + (cc.groupsOverlap ? std::max(a2aAll, agAll) : a2aAll + agAll);
    const double vecIdeal = g.ring ? D(ops) * D(rowsAll) * D(g.N) / (D(m.aivNum) * cc.vecElemOpsPerSec) : 0.0;
    p.computeIdeal = std::max(std::max(2.0 * D(rowsAll) * D(g.H) * D(g.N) / cc.cubeFlopsPerSec,
                                       D(p.hbmFloor) / cc.hbmBytesPerSec),
                              vecIdeal);
    p.bound = std::max(p.commIdeal, p.computeIdeal);
    // description
    p.tiling = std::to_string(g.nTiles) + " tile(s) of";
    for (uint32_t k = 0; k < g.nTiles; ++k) p.tiling += " " + std::to_string(aag::TileCells(g, k));
    p.tiling += " cells";
    if (g.shard == 1U) {
        p.tiling += ", own rows " + std::to_string(g.ownAhead) + " tile(s) ahead, peer rows " +
                    (g.splitPeer ? std::to_string(g.peerAhead) + " tile(s) ahead" : "with the far rows");
    }
    p.tiling += "; units " + std::to_string(g.unitM) + "x" + std::to_string(g.unitN) +
                (g.ring ? " (fp32 ring + epilogue)" : " (y1 written by the matmul)");
    return p;
}

/* ------------------------------------------------------------- the planner */

namespace {

/* plans predicted within 1 % of the fastest count as equally fast; the planner then takes the one
 * that moves the fewest HBM bytes (a policy of this planner, not a hardware constant) */
constexpr double kMakespanSlack = 0.01;

/* boundaries aligned to 16 cells inside an expert (full 16-row units), never past the end */
uint64_t AlignCell(uint64_t c, uint64_t total)
{
    const uint64_t a = AlignUp(c, 16U);
    return std::min(a, total);
}

/* first tile of `first` cells, a last tile of `last` cells (0: none), the rest in `mid` equal tiles */
std::vector<uint64_t> Shape(uint64_t total, uint64_t first, uint64_t mid, uint64_t last)
{
    std::vector<uint64_t> ends;
    uint64_t pos = 0;
    if (first > 0U && first < total) {
        pos = AlignCell(first, total);
        ends.push_back(pos);
    }
    const uint64_t lastStart = (last > 0U && last < total - pos) ? total - last : total;
    const uint64_t rest = lastStart - pos;
    if (mid == 0U) mid = 1U;
    for (uint64_t k = 1; k <= mid && pos < lastStart; ++k) {
        uint64_t e = (k == mid) ? lastStart : std::max(pos + 1U, AlignCell(pos + CeilDiv(rest, mid) * 1U, lastStart));
        if (k < mid) e = std::min(e, lastStart);
        if (e <= pos) continue;
        ends.push_back(e);
        pos = e;
    }
    if (pos < total) ends.push_back(total);
    return ends;
}

/* tiles growing by `ratio` from `first` cells (communication of tile k+1 hidden behind the compute of
 * tiles 1..k), the last one cut in `lastParts` equal pieces */
std::vector<uint64_t> Geometric(uint64_t total, uint64_t first, double ratio, uint64_t lastParts)
{
    std::vector<uint64_t> ends;
    uint64_t pos = 0;
    double size = static_cast<double>(first);
    while (pos < total && ends.size() + lastParts < aag::kMaxTiles) {
        const uint64_t want = AlignCell(pos + static_cast<uint64_t>(size), total);
        if (want >= total || total - want < static_cast<uint64_t>(size * ratio) / 2U) break;
        ends.push_back(want);
        pos = want;
        size *= ratio;
    }
    const uint64_t rest = total - pos;
    for (uint64_t k = 1; k < lastParts && rest > 16U * lastParts; ++k) {
        const uint64_t e = AlignCell(pos + rest * k / lastParts, total);
        if (e > (ends.empty() ? 0U : ends.back()) && e < total) ends.push_back(e);
    }
    ends.push_back(total);
    return ends;
}

/* tiles growing by `ratio` from `first` cells up to `maxSize`, then of maxSize, and a short last one
 * (`last` cells, 0: none): a short first tile starts the pipeline early, a short last one ends it */
std::vector<uint64_t> Ramp(uint64_t total, uint64_t first, double ratio, uint64_t maxSize, uint64_t last)
{
    std::vector<uint64_t> ends;
    uint64_t pos = 0;
    double size = static_cast<double>(first);
    const uint64_t stop = (last > 0U && last + 16U < total) ? total - last : total;
    while (ends.size() + 2U < aag::kMaxTiles) {
        const uint64_t e = AlignCell(pos + static_cast<uint64_t>(size), total);
        if (e + 16U >= stop) break;
        ends.push_back(e);
        pos = e;
        size = std::min(size * ratio, static_cast<double>(maxSize));
    }
    if (stop < total && stop > pos) ends.push_back(stop);
    ends.push_back(total);
    return ends;
}

bool Legal(const std::vector<uint64_t> &ends, const aag::Geom &g, uint64_t eb, const CostConstants &cc)
{
    if (ends.empty() || ends.size() > aag::kMaxTiles) return false;
    uint64_t prev = 0;
    for (uint64_t e : ends) {
        if (e <= prev) return false;
        if (static_cast<uint64_t>(g.tp) * g.ep * (e - prev) * g.Hx * eb > cc.hcclMaxBytesPerCall) return false;
        prev = e;
    }
    return prev == aag::Cells(g);
}

/* shard 1: the order of the own and peer rows */
struct Order {
    uint32_t own;   // tiles the own rows run ahead
    int32_t peer;   // tiles the peer rows run ahead; -1: they wait for the AllGather with the far rows
};

/* the orders of the planner's first round: the own rows as far ahead as any order (`last`, the last of
 * the list), the peer rows with the far rows or as far ahead as that */
bool FirstRound(const Order &o, const Order &last)
{
    return o.own == last.own && (o.peer < 0 || o.peer == last.peer);
}

void ApplyOrder(aag::Geom &g, const Order &o)
{
    if (g.shard != 1U) return;
    g.ownAhead = std::min<uint32_t>(o.own, aag::kMaxTiles);
    g.splitPeer = o.peer >= 0 ? 1U : 0U;
    g.peerAhead = o.peer >= 0 ? std::min<uint32_t>(static_cast<uint32_t>(o.peer), aag::kMaxTiles) : 0U;
}

}  // namespace

Plan PlanTiles(const Args &a, const Machine &m, const CostConstants &cc)
{
    const Dims d = DeriveDims(a);
    const uint64_t eb = DTypeBytes(a.xDtype);
    const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
    std::vector<std::vector<uint64_t>> cands;
    auto add = [&cands](std::vector<uint64_t> v) {
        if (!v.empty() && std::find(cands.begin(), cands.end(), v) == cands.end()) cands.push_back(std::move(v));
    };
    // along experts and row chunks of one expert (the shapes of a forced --tiles)
    for (uint64_t e = 1; e <= static_cast<uint64_t>(d.El); ++e) add(UniformTiles(d, e, static_cast<uint64_t>(d.Rx)));
    // n middle tiles, optionally behind a short first tile and in front of a short last tile
    for (uint64_t n = 1; n <= aag::kMaxTiles; ++n) {
        const uint64_t mid = CeilDiv(total, n);
        add(Shape(total, 0, n, 0));
        for (uint64_t f : {2U, 4U, 8U, 16U, 32U, 64U}) {
            const uint64_t first = std::max<uint64_t>(16U, mid / f);
            if (first >= total) continue;
            for (uint64_t l : {0U, 2U, 4U, 8U}) {
                const uint64_t last = l ? std::max<uint64_t>(16U, mid / l) : 0U;
                for (uint64_t nm = std::max<uint64_t>(1U, n - 1U); nm <= n; ++nm) {
                    add(Shape(total, first, nm, last));
                }
            }
        }
    }
    for (uint64_t first : {16U, 32U, 64U, 128U, 256U, 512U, 1024U}) {
        if (first >= total) continue;
        for (double r : {1.25, 1.5, 2.0, 3.0}) {
            for (uint64_t lp : {1U, 2U, 3U}) add(Geometric(total, first, r, lp));
        }
    }
    for (uint64_t parts = 3; parts <= 12U; ++parts) {
        const uint64_t mx = std::max<uint64_t>(16U, total / parts);
        for (uint64_t first : {16U, 64U, 256U}) {
            if (first >= mx) continue;
            for (double r : {2.0, 3.0})
                for (uint64_t last : {0U, 32U, 128U}) add(Ramp(total, first, r, mx, last));
        }
    }
    // every candidate x order of the own and peer rows (shard 1: how many tiles ahead the own rows run;
    // whether the peer rows wait for the AllGather with the far rows or are a phase of their own, and how
    // many tiles ahead). The smallest makespan wins, and among the plans within kMakespanSlack of it the
    // one that moves the fewest HBM bytes (then the fewest tiles).
    auto ordersOf = [&](uint32_t n) {
        if (d.shard != 1) return std::vector<Order>{{0U, -1}};
        std::vector<uint32_t> aheads{0U};
        for (uint32_t v : {1U, 2U, n}) {
            if (v <= n && std::find(aheads.begin(), aheads.end(), v) == aheads.end()) aheads.push_back(v);
        }
        const std::vector<uint32_t> owns =
            m.ownAhead >= 0 ? std::vector<uint32_t>{static_cast<uint32_t>(m.ownAhead)} : aheads;
        std::vector<Order> v;
        for (uint32_t own : owns) {
            if (m.splitPeer <= 0 && m.peerAhead < 0) v.push_back(Order{own, -1});
            if (m.splitPeer == 0) continue;
            if (m.peerAhead >= 0) {
                v.push_back(Order{own, m.peerAhead});
                continue;
            }
            // a tile's own rows are there before its peer rows: the peer rows never run further ahead
            for (uint32_t peer : aheads) {
                if (peer <= own) v.push_back(Order{own, static_cast<int32_t>(peer)});
            }
        }
        return v;
    };
    struct Scored {
        double makespan;
        uint64_t hbm;
        uint32_t tiles;
        size_t cand;
        Order order;
    };
    std::vector<Scored> scored;
    auto score = [&](size_t ci, const Order &o) {
        aag::Geom g = MakeGeom(a, cands[ci], m);
        ApplyOrder(g, o);
        const Prediction pr = Evaluate(a, g, m, cc, /*exactWorkspace=*/false);
        scored.push_back(Scored{pr.makespan, pr.bytes.HbmData() + pr.bytes.hbmWorkspace, g.nTiles, ci, o});
        return pr.makespan;
    };
    // two rounds keep the host tiling quick: every legal tiling with the orders whose own and peer rows run
    // the furthest ahead (or the peer rows with the far rows), then every order for the kRefined fastest
    // tilings of that round
    constexpr size_t kRefined = 8;
    const aag::Geom probe = MakeGeom(a, {total}, m);
    std::vector<std::pair<double, size_t>> firstRound;
    for (size_t ci = 0; ci < cands.size(); ++ci) {
        if (!Legal(cands[ci], probe, eb, cc)) continue;
        const std::vector<Order> all = ordersOf(static_cast<uint32_t>(cands[ci].size()));
        double fastestHere = -1;
        for (const Order &o : all) {
            if (!FirstRound(o, all.back())) continue;
            const double t = score(ci, o);
            fastestHere = fastestHere < 0 ? t : std::min(fastestHere, t);
        }
        firstRound.emplace_back(fastestHere, ci);
    }
    std::sort(firstRound.begin(), firstRound.end());
    for (size_t r = 0; r < std::min(kRefined, firstRound.size()); ++r) {
        const size_t ci = firstRound[r].second;
        const std::vector<Order> all = ordersOf(static_cast<uint32_t>(cands[ci].size()));
        for (const Order &o : all) {
            if (!FirstRound(o, all.back())) score(ci, o);
        }
    }
    Plan best;
    if (scored.empty()) {  // nothing fits HCCL's window: the finest uniform split (the host reports the plan as is)
        best.g = MakeGeom(a, Shape(total, 0, aag::kMaxTiles, 0), m);
        best.pred = Evaluate(a, best.g, m, cc);
        best.candidates = 0;
        return best;
    }
    double fastest = scored[0].makespan;
    for (const Scored &x : scored) fastest = std::min(fastest, x.makespan);
    const Scored *pick = nullptr;
    for (const Scored &x : scored) {
        if (x.makespan > fastest * (1.0 + kMakespanSlack)) continue;
        if (pick == nullptr || x.hbm < pick->hbm || (x.hbm == pick->hbm && x.makespan < pick->makespan) ||
            (x.hbm == pick->hbm && x.makespan == pick->makespan && x.tiles < pick->tiles)) {
            pick = &x;
        }
    }
    best.g = MakeGeom(a, cands[pick->cand], m);
    ApplyOrder(best.g, pick->order);
    best.pred = Evaluate(a, best.g, m, cc);
    const uint32_t evaluated = static_cast<uint32_t>(scored.size());
    best.candidates = evaluated;
    return best;
}

/* ---------------------------------------------- CANN's reference schedule */

namespace {

/* one pass of the reference / issue-9 kernels: its parts run one after another (SyncAll between
 * them, PIPE_ALL or a wait on every chunk inside them), so times add */
struct SerialPass {
    double cube = 0, vec = 0, bytes = 0, hbm = 0;
    double Time(const CostConstants &cc) const
    {
        return cube + vec + std::max(bytes / cc.l2BytesPerSec, hbm / cc.hbmBytesPerSec);
    }
};

/* the reference's vector ops per element after its matmul (rounded to x's dtype): bias add, the
 * activation, casts (bf16 is computed in fp32: a Cast in and out) */
uint32_t ReferenceOps(const Args &a, int64_t act, bool y3)
{
    const bool bf16 = a.xDtype == DType::kBFloat16;
    uint32_t ops = (a.hasBias ? 1U : 0U);
    switch (act) {
        case 1: ops += 13U; break;
        case 2: ops += 4U + (bf16 ? 0U : 2U); break;  // fp16 Silu goes through fp32
        case 3: ops += 1U; break;
        case 4: ops += 4U; break;
        default: break;
    }
    if (bf16 && (a.hasBias || act != 0)) ops += 2U + (y3 ? 1U : 0U);
    return ops;
}

}  // namespace

namespace {

/* one bound per call: every schedule is measured against the bound and floor this kernel's model gives */
Prediction WithTheCallsBound(Prediction p, const Args &a, const Machine &m, const CostConstants &cc)
{
    const Dims d = DeriveDims(a);
    const Prediction own = Evaluate(a, MakeGeom(a, {static_cast<uint64_t>(d.El * d.Rx)}, m), m, cc);
    p.bound = own.bound;
    p.commIdeal = own.commIdeal;
    p.computeIdeal = own.computeIdeal;
    p.hbmFloor = own.hbmFloor;
    return p;
}

}  // namespace

Prediction EvaluateReference(const Args &a, const Machine &m, const CostConstants &cc)
{
    const Dims d = DeriveDims(a);
    const uint64_t eb = DTypeBytes(a.xDtype), beb = BiasBytes(a);
    const uint64_t El = d.El, Rx = d.Rx, Hx = d.Hx, H = d.H, N = d.N, ep = d.ep, tp = d.tp;
    const uint64_t cap = cc.mem.l2Bytes;
    const uint32_t ops = ReferenceOps(a, d.act, d.y3Out);
    const bool epilogue = a.hasBias || d.act != 0;  // without: a plain copy of the matmul output into y1
    Prediction best;
    bool have = false;
    for (uint64_t nE = 1; nE <= std::min<uint64_t>(El, 4U); ++nE) {  // at most 5 tiles: local + 4 along E
        if (El % nE != 0U) continue;                                  // E/ep is cut evenly
        const uint64_t tileE = El / nE;
        Prediction p;
        p.schedule = "CANN reference";
        // communication: the local AllGather, then per tile one AlltoAllV per expert and an AllGather;
        // each tile's first AlltoAllV waits for the previous AllGather (InterHcclGroupSync, ep != 2)
        double c = 0;
        const double localAg = cc.collectiveLatencySec + D(El * Rx * Hx * eb) / cc.linkBytesPerSec;
        std::vector<double> agEnd(nE + 1U);
        c += localAg;
        agEnd[0] = c;
        for (uint64_t k = 1; k <= nE; ++k) {
            c += D(tileE) * (cc.collectiveLatencySec + D(Rx * Hx * eb) / cc.linkBytesPerSec);
            c += cc.collectiveLatencySec + D(tileE * ep * Rx * Hx * eb) / cc.linkBytesPerSec;
            agEnd[k] = c;
        }
        p.commTotal = c;
        p.collectives = 1U + nE * (tileE + 1U);
        // compute: per tile Wait + SyncAll, transpose in, SyncAll, batched matmul (C in x's dtype),
        // SyncAll, the vector pass (bias, activation, into y1 / y3)
        double t = 0;
        uint64_t scratchMax = 0, bmmMax = 0;
        uint64_t footprint = 0;
        for (uint64_t k = 0; k <= nE; ++k) {
            const uint64_t experts = k == 0 ? El : tileE;
            const uint64_t rowsPerE = k == 0 ? tp * Rx : (ep - 1U) * tp * Rx;
            const uint64_t rows = experts * rowsPerE;
            TileTimeline tl;
            tl.agEnd = agEnd[k];
            Bytes b;
            SerialPass before, bmm, after;
            const bool transposeIn = k > 0 || experts != 1U || d.y2Out;
            if (transposeIn) {
                before.bytes = 2.0 * D(rows * H * eb) + (d.y2Out ? D(rows * H * eb) : 0.0);
                b.gmData += rows * H * eb;
                b.gmWorkspace += rows * H * eb;
                if (d.y2Out) b.gmData += rows * H * eb, b.hbmDataWrite += rows * H * eb;
                scratchMax = std::max(scratchMax, rows * H * eb);
            }
            b.hbmDataRead += rows * H * eb;  // the gathered rows, once
            const double flops = 2.0 * D(experts) * D(A16(rowsPerE)) * D(A16(H)) * D(A16(N));
            bmm.cube = flops / cc.cubeFlopsPerSec + D(experts) * cc.matmulSyncCallSec;
            bmm.bytes = D(rows * H * eb + experts * H * N * eb + rows * N * eb);
            (transposeIn ? b.gmWorkspace : b.gmData) += rows * H * eb;
            b.gmData += experts * H * N * eb;
            b.gmWorkspace += rows * N * eb;
            // the weight: first use in the local tile; again in its non-local tile unless still in L2
            const uint64_t w = experts * H * N * eb;
            if (k == 0 || footprint > cap) b.hbmDataRead += w;
            footprint = (k == 0) ? (2U * rows * H * eb + w + 2U * rows * N * eb) : footprint;
            bmmMax = std::max(bmmMax, rows * N * eb);
            const uint64_t outs = 1U + (d.y3Out ? 1U : 0U);
            after.bytes = D(rows * N * eb + outs * rows * N * eb + (a.hasBias ? rows * N * beb : 0U));
            after.vec = epilogue ? D(ops) * D(rows) * D(A16(N)) / (D(m.aivNum) * cc.vecElemOpsPerSec) : 0.0;
            b.gmWorkspace += rows * N * eb;
            b.gmData += outs * rows * N * eb + (a.hasBias ? rows * N * beb : 0U);
            b.hbmDataWrite += outs * rows * N * eb;
            if (k == 0 && a.hasBias) b.hbmDataRead += El * N * beb;
            p.vectorElemOps += epilogue ? ops * rows * A16(N) : 0U;
            before.hbm = 0;
            bmm.hbm = D(b.hbmDataRead);
            after.hbm = D(b.hbmDataWrite);
            tl.farStart = std::max(t, tl.agEnd + cc.waitSec) + cc.syncAllSec;
            tl.far.fixed = 3.0 * cc.syncAllSec;
            tl.far.cube = bmm.cube;
            tl.far.vector = after.vec;
            tl.far.l2 = (before.bytes + bmm.bytes + after.bytes) / cc.l2BytesPerSec;
            tl.far.hbm = D(b.HbmData()) / cc.hbmBytesPerSec;
            const double dur = before.Time(cc) + bmm.Time(cc) + after.Time(cc) + 3.0 * cc.syncAllSec;
            tl.farEnd = tl.farStart + dur;
            t = tl.farEnd;
            tl.cubeFlops = flops;
            p.cubeFlops += flops;
            p.cubeFlopsExact += 2.0 * D(rows) * D(H) * D(N);
            p.matmulCalls += experts;
            p.syncAlls += 4U;
            p.computeTotal += dur;
            tl.bytes = b;
            p.bytes.Add(b);
            p.tiles.push_back(tl);
        }
        p.bytes.hbmWorkspace = scratchMax + bmmMax;  // the reused scratch, flushed at the end
        p.makespan = t;
        p.tiling = "local block (" + std::to_string(El) + " experts) + " + std::to_string(nE) + " tile(s) of " +
                   std::to_string(tileE) + " expert(s)";
        if (!have || p.makespan < best.makespan) {
            best = p;
            have = true;
        }
    }
    return WithTheCallsBound(std::move(best), a, m, cc);
}

/* --------------------------------------------------- the issue-9 kernel */

Prediction EvaluateLegacy(const Args &a, const Machine &m, uint64_t eTileIn, uint64_t cTileIn,
                          const CostConstants &cc)
{
    const Dims d = DeriveDims(a);
    const uint64_t eb = DTypeBytes(a.xDtype), beb = BiasBytes(a);
    const uint64_t El = d.El, Rx = d.Rx, Hx = d.Hx, H = d.H, N = d.N, ep = d.ep, tp = d.tp, C = d.C;
    const uint64_t cap = cc.mem.l2Bytes, line = cc.mem.l2LineBytes;
    // shapes the issue-9 planner could choose
    std::vector<std::pair<uint64_t, uint64_t>> shapes;
    if (eTileIn > 0U) {
        shapes.emplace_back(eTileIn, cTileIn);
    } else {
        for (uint64_t e = 1; e <= El; ++e)
            if (CeilDiv(El, e) <= 16U) shapes.emplace_back(e, Rx);
        for (uint64_t n = 2; n <= 16U; ++n)
            if (El * n <= 16U && CeilDiv(Rx, n) < Rx) shapes.emplace_back(1U, CeilDiv(Rx, n));
    }
    Prediction best;
    bool have = false;
    for (const auto &sh : shapes) {
        const uint64_t eTile = sh.first, cTile = sh.second;
        const uint64_t nE = CeilDiv(El, eTile), nC = CeilDiv(Rx, cTile);
        Prediction p;
        p.schedule = "issue-9 kernel";
        const uint32_t ops = 1U + (a.hasBias ? (a.biasDtype == DType::kFloat32 ? 1U : 2U) : 0U) +
                             (d.y3Out ? 1U : 0U) + (EpilogueOpsPerElem(d.act, false, false) - 1U);
        const uint64_t outs = 1U + (d.y3Out ? 1U : 0U);
        double c = 0;
        if (d.shard == 0) c = cc.collectiveLatencySec + D(El * Rx * Hx * eb) / cc.linkBytesPerSec;
        std::vector<double> agEnd{c};
        const uint64_t slots = d.shard == 1 ? ep : ep - 1U;
        for (uint64_t eb0 = 0; eb0 < nE; ++eb0)
            for (uint64_t cb = 0; cb < nC; ++cb) {
                const uint64_t eL = std::min(eTile, El - eb0 * eTile), cL = std::min(cTile, Rx - cb * cTile);
                c += cc.collectiveLatencySec + D(eL * cL * Hx * eb) / cc.linkBytesPerSec;
                c += cc.collectiveLatencySec + D(slots * eL * cL * Hx * eb) / cc.linkBytesPerSec;
                agEnd.push_back(c);
            }
        p.commTotal = c;
        p.collectives = 2U * (agEnd.size() - 1U) + (d.shard == 0 ? 1U : 0U);
        double t = 0;
        uint64_t maxRun = d.shard == 1 ? Rx : C;
        std::vector<double> lastUse(El, -1.0);  // bytes touched when expert e's weight was last read
        double touched = 0;
        for (size_t k = 0; k < agEnd.size(); ++k) {
            uint64_t runs, runRows, copyRows;
            uint64_t e0 = 0, eL = El;
            if (k == 0) {
                runs = El;
                runRows = d.shard == 1 ? Rx : C;
                copyRows = d.shard == 1 ? El * Rx : El * tp * Rx;
            } else {
                const uint64_t idx = k - 1U;
                e0 = (idx / nC) * eTile;
                eL = std::min(eTile, El - e0);
                const uint64_t cL = std::min(cTile, Rx - (idx % nC) * cTile);
                runs = eL * (d.shard == 1 ? ep * tp - 1U : ep - 1U);
                runRows = cL;
                copyRows = eL * (d.shard == 1 ? ep * tp - 1U : tp * (ep - 1U)) * cL;
                maxRun = std::max(maxRun, cL);
            }
            uint64_t wReads = 0;  // an expert's weight comes from HBM unless it is still in L2
            for (uint64_t e = e0; e < e0 + eL; ++e) {
                if (lastUse[e] < 0 || touched - lastUse[e] > D(cap)) ++wReads;
                lastUse[e] = touched;
            }
            TileTimeline tl;
            tl.agEnd = agEnd[k];
            Bytes b;
            // assemble: GM -> UB -> GM with PIPE_ALL after each copy
            const uint64_t copyBytes = copyRows * Hx * eb;
            SerialPass asmP;
            asmP.bytes = 2.0 * D(copyBytes);
            asmP.hbm = D(copyBytes);
            b.gmData += copyBytes;
            (d.y2Out ? b.gmData : b.gmWorkspace) += copyBytes;
            b.hbmDataRead += copyBytes;
            if (d.y2Out) b.hbmDataWrite += copyBytes;
            // runs: matmul into the fp32 scratch, SyncAll, epilogue, SyncAll
            const uint64_t outRows = runs * runRows;
            SerialPass mmP, epiP;
            const double flops = 2.0 * D(runs) * D(A16(runRows)) * D(A16(H)) * D(A16(N));
            mmP.cube = flops / cc.cubeFlopsPerSec + D(runs) * cc.matmulSyncCallSec;
            // each run is split over the cube cores in singleCoreM x singleCoreN blocks (the split the CPU model's
            // TCubeTiling made for that kernel): A is read once per column block, B once per row block
            const uint64_t nSplit = std::min<uint64_t>(m.aicNum, CeilDiv(N, 16U));
            const uint64_t sN = std::min<uint64_t>(N, A16(CeilDiv(N, nSplit)));
            const uint64_t runMax = std::max<uint64_t>(d.shard == 1 ? Rx : C, cTile < Rx ? cTile : 0U);
            const uint64_t mSplit = std::max<uint64_t>(1U, m.aicNum / nSplit);
            const uint64_t sM = std::min<uint64_t>(runMax, A16(CeilDiv(runMax, mSplit)));
            const uint64_t nBlocks = CeilDiv(N, sN), mBlocks = CeilDiv(runRows, sM);
            mmP.bytes = D(nBlocks * outRows * H * eb + runs * mBlocks * H * N * eb + outRows * N * 4U);
            (d.y2Out ? b.gmData : b.gmWorkspace) += nBlocks * outRows * H * eb;
            b.gmData += runs * mBlocks * H * N * eb;
            b.gmWorkspace += 2U * outRows * N * 4U;
            mmP.hbm = D(wReads * H * N * eb);
            b.hbmDataRead += wReads * H * N * eb;
            epiP.bytes = D(outRows * N * 4U + outs * outRows * N * eb + (a.hasBias ? outRows * N * beb : 0U));
            b.gmData += outs * outRows * N * eb + (a.hasBias ? outRows * N * beb : 0U);
            epiP.vec = D(ops) * D(outRows) * D(N) / (D(m.aivNum) * cc.vecElemOpsPerSec);
            epiP.hbm = D(outs * outRows * N * eb);
            b.hbmDataWrite += outs * outRows * N * eb;
            p.vectorElemOps += ops * outRows * N;
            const double dur = asmP.Time(cc) + mmP.Time(cc) + epiP.Time(cc) + 2.0 * cc.syncAllSec +
                               2.0 * D(runs) * cc.syncAllSec;
            touched += D(copyBytes + eL * H * N * eb + outs * outRows * N * eb + maxRun * N * 4U);
            tl.farStart = std::max(t, tl.agEnd + cc.waitSec);
            tl.farEnd = tl.farStart + dur;
            tl.far.cube = mmP.cube;
            tl.far.vector = epiP.vec;
            tl.far.l2 = (asmP.bytes + mmP.bytes + epiP.bytes) / cc.l2BytesPerSec;
            tl.far.hbm = D(b.HbmData()) / cc.hbmBytesPerSec;
            t = tl.farEnd;
            tl.cubeFlops = flops;
            tl.bytes = b;
            p.cubeFlops += flops;
            p.cubeFlopsExact += 2.0 * D(outRows) * D(H) * D(N);
            p.matmulCalls += runs;
            p.syncAlls += 2U + 2U * runs;
            p.computeTotal += dur;
            p.bytes.Add(b);
            p.tiles.push_back(tl);
        }
        if (a.hasBias) p.bytes.hbmDataRead += El * N * beb;
        p.bytes.hbmWorkspace = (d.y2Out ? 0U : AlignUp(El * ep * C * H * eb, line)) + AlignUp(maxRun * N * 4U, line);
        p.makespan = t + cc.syncAllSec;
        p.tiling = "local block + " + std::to_string(agEnd.size() - 1U) + " remote tile(s) of " +
                   std::to_string(eTile) + " expert(s) x " + std::to_string(cTile) + " row(s)";
        if (!have || p.makespan < best.makespan) {
            best = p;
            have = true;
        }
    }
    return WithTheCallsBound(std::move(best), a, m, cc);
}

}  // namespace moe_mc2
