#include "aag_bmm_planner.h"

#include <algorithm>
#include <cmath>

namespace moe_mc2 {

namespace {

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1U) / b; }

}  // namespace

bool TileShapeLegal(const Dims &d, uint64_t eTile, uint64_t cTile)
{
    const uint64_t El = static_cast<uint64_t>(d.El);
    const uint64_t Rx = static_cast<uint64_t>(d.Rx);
    if (eTile < 1U || eTile > El || cTile < 1U || cTile > Rx) {
        return false;
    }
    // one AlltoAllV per tile needs a contiguous per-peer block
    if (cTile < Rx && eTile != 1U) {
        return false;
    }
    return CeilDiv(El, eTile) * CeilDiv(Rx, cTile) <= aag::kMaxRemoteTiles;
}

aag::Geom MakeGeom(const Args &a, uint64_t eTile, uint64_t cTile)
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
    g.eTile = eTile;
    g.cTile = cTile;
    g.nETiles = static_cast<uint32_t>(CeilDiv(g.El, eTile));
    g.nCTiles = static_cast<uint32_t>(CeilDiv(g.Rx, cTile));
    g.transposeWeight = a.transposeWeight ? 1U : 0U;
    g.hasBias = a.hasBias ? 1U : 0U;
    g.y2Out = d.y2Out ? 1U : 0U;
    g.y3Out = d.y3Out ? 1U : 0U;
    return g;
}

Plan Evaluate(const aag::Geom &g, uint32_t elemBytes, const CostModel &cm)
{
    Plan p;
    p.g = g;
    const double link = cm.linkBytesPerSec * cm.linkEfficiency;
    const double hbm = cm.hbmBytesPerSec * cm.hbmEfficiency;
    const double cube = cm.cubePeakFlops * cm.cubeEfficiency;
    const double eb = static_cast<double>(elemBytes);
    const uint32_t nt = aag::NumTiles(g);
    p.tiles.resize(nt);
    double commEnd = 0;
    double compEnd = 0;
    for (uint32_t k = 0; k < nt; ++k) {
        TileCost &tc = p.tiles[k];
        // communication of tile k
        if (k == 0U) {
            if (g.shard == 0U) {  // tp AllGather of the own El experts
                tc.comm = (g.tp - 1.0) * static_cast<double>(aag::AGSendCount(g, 0U)) * eb / link + cm.commOverheadSec;
            }
        } else {
            double a2a = (g.ep - 1.0) * static_cast<double>(aag::A2ABlock(g, k)) * eb / link + cm.commOverheadSec;
            double ag = (g.tp - 1.0) * static_cast<double>(aag::AGSendCount(g, k)) * eb / link + cm.commOverheadSec;
            tc.comm = a2a + ag;
        }
        // computation of tile k: assemble copy + matmuls + epilogue (closed forms
        // of what aag::CopyBlockAt / aag::RunAt enumerate; a test checks they agree)
        const aag::TileRange tr = aag::Tile(g, k);
        const uint64_t runs = aag::NumRuns(g, k);
        double copyRows = 0;
        if (k == 0U) {
            copyRows = static_cast<double>(aag::NumCopyBlocks(g, 0U) * g.Rx);
        } else {
            uint64_t skipped = (g.shard == 1U) ? tr.eL : 0U;
            copyRows = static_cast<double>((aag::NumCopyBlocks(g, k) - skipped) * tr.cL);
        }
        double copyElems = copyRows * static_cast<double>(g.Hx);
        double outElems = static_cast<double>(runs * tr.cL * g.N);
        double flops = 2.0 * static_cast<double>(runs * tr.cL) * static_cast<double>(g.H) * static_cast<double>(g.N);
        double epilogueBytes = outElems * (4.0 + 4.0 + eb * (g.y3Out ? 2.0 : 1.0));  // fp32 write+read, y out
        tc.comp = 2.0 * copyElems * eb / hbm + flops / cube + static_cast<double>(runs) * cm.matmulOverheadSec +
                  epilogueBytes / hbm + cm.tileOverheadSec;
        commEnd += tc.comm;
        tc.commEnd = commEnd;
        compEnd = std::max(compEnd, commEnd) + tc.comp;
        tc.compEnd = compEnd;
        p.noOverlap += tc.comm + tc.comp;
    }
    p.makespan = compEnd;
    p.candidates = 1;
    return p;
}

Plan PlanTiles(const Args &a, const CostModel &cm)
{
    Dims d = DeriveDims(a);
    const uint32_t eb = DTypeBytes(a.xDtype);
    const uint64_t El = static_cast<uint64_t>(d.El);
    const uint64_t Rx = static_cast<uint64_t>(d.Rx);
    std::vector<std::pair<uint64_t, uint64_t>> shapes;
    for (uint64_t e = 1; e <= El; ++e) {          // experts x all rows
        if (TileShapeLegal(d, e, Rx)) {
            shapes.emplace_back(e, Rx);
        }
    }
    uint64_t lastC = Rx;
    for (uint64_t nc = 2; nc <= aag::kMaxRemoteTiles; ++nc) {  // one expert x row chunks
        uint64_t c = CeilDiv(Rx, nc);
        if (c >= 16U && c % 16U != 0U && (c / 16U + 1U) * 16U < Rx) {
            c = (c / 16U + 1U) * 16U;  // cube-friendly row count when it still splits
        }
        if (c < Rx && c != lastC && TileShapeLegal(d, 1U, c)) {
            shapes.emplace_back(1U, c);
            lastC = c;
        }
    }
    Plan best;
    bool have = false;
    for (const auto &s : shapes) {
        Plan p = Evaluate(MakeGeom(a, s.first, s.second), eb, cm);
        bool better = !have || p.makespan < best.makespan * (1.0 - 1e-9) ||
                      (p.makespan <= best.makespan * (1.0 + 1e-9) && p.tiles.size() < best.tiles.size());
        if (better) {
            best = p;
            have = true;
        }
    }
    best.candidates = static_cast<uint32_t>(shapes.size());
    return best;
}

uint64_t WorkspaceBytes(const aag::Geom &g, uint32_t elemBytes) { return aag::Workspace(g, elemBytes).totalBytes; }

uint64_t TilingKeyOf(const Args &a)
{
    Dims d = DeriveDims(a);
    return aag::TilingKey(static_cast<uint32_t>(d.shard), a.transposeWeight ? 1U : 0U, a.hasBias ? 1U : 0U,
                          d.y2Out ? 1U : 0U, d.y3Out ? 1U : 0U);
}

}  // namespace moe_mc2
