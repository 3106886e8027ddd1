#include "host_twin.h"

#include <cmath>
#include <sstream>

namespace moe_mc2_test {

using moe_mc2::Args;
using moe_mc2::DeriveDims;
using moe_mc2::Dims;

double Activate(int64_t act, double v)
{
    switch (act) {
        case 0: return v;
        case 1: return v / (1.0 + std::exp(-1.59576912 * (v + 0.044715 * v * v * v)));  // GELU, tanh form
        case 2: return v / (1.0 + std::exp(-v));                                          // Silu
        case 3: return v > 0.0 ? v : 0.0;                                                 // Relu
        case 4: return v / (1.0 + std::exp(-1.702 * v));                                 // FastGELU
        default: return std::nan("");
    }
}

std::vector<RankData> MakeWorld(const Args &a, std::mt19937_64 &rng)
{
    Dims d = DeriveDims(a);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<RankData> world(static_cast<size_t>(d.ep * d.tp));
    for (auto &r : world) {
        r.x.resize(static_cast<size_t>(d.E * d.Rx * d.Hx));
        for (auto &v : r.x) v = u(rng);
        r.weight.resize(static_cast<size_t>(d.El * d.H * d.N));
        for (auto &v : r.weight) v = u(rng);
        if (a.hasBias) {
            r.bias.resize(static_cast<size_t>(d.El * d.N));
            for (auto &v : r.bias) v = u(rng);
        }
    }
    return world;
}

RankOut Reference(const Args &a, const std::vector<RankData> &world, int64_t i, int64_t t)
{
    Dims d = DeriveDims(a);
    const int64_t rows = d.ep * d.C;
    RankOut o;
    std::vector<double> y2(static_cast<size_t>(d.El * rows * d.H), std::nan(""));
    // y2 straight from the contract's formulas (docs/contract.md §2)
    for (int64_t j = 0; j < d.ep; ++j) {
        for (int64_t s = 0; s < d.tp; ++s) {
            const RankData &src = world[static_cast<size_t>(j + d.ep * s)];
            for (int64_t e = 0; e < d.El; ++e) {
                for (int64_t c = 0; c < d.Rx; ++c) {
                    for (int64_t h = 0; h < d.Hx; ++h) {
                        double v = src.x[static_cast<size_t>(((i * d.El + e) * d.Rx + c) * d.Hx + h)];
                        int64_t row, col;
                        if (d.shard == 1) {  // y2[e, j*C + s*Ct + c, h] = x_(j,s)[i*El + e, c, h]
                            row = j * d.C + s * d.Rx + c;
                            col = h;
                        } else {             // y2[e, j*C + c, s*Ht + k] = x_(j,s)[i*El + e, c, k]
                            row = j * d.C + c;
                            col = s * d.Hx + h;
                        }
                        y2[static_cast<size_t>((e * rows + row) * d.H + col)] = v;
                    }
                }
            }
        }
    }
    const RankData &me = world[static_cast<size_t>(i + d.ep * t)];
    std::vector<double> y3(static_cast<size_t>(d.El * rows * d.N));
    for (int64_t e = 0; e < d.El; ++e) {
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t n = 0; n < d.N; ++n) {
                double acc = 0.0;
                for (int64_t h = 0; h < d.H; ++h) {
                    // logical weight (El, H, N); stored transposed as (El, N, H) when asked
                    double w = a.transposeWeight ? me.weight[static_cast<size_t>((e * d.N + n) * d.H + h)]
                                                 : me.weight[static_cast<size_t>((e * d.H + h) * d.N + n)];
                    acc += y2[static_cast<size_t>((e * rows + r) * d.H + h)] * w;
                }
                if (a.hasBias) acc += me.bias[static_cast<size_t>(e * d.N + n)];
                y3[static_cast<size_t>((e * rows + r) * d.N + n)] = acc;
            }
        }
    }
    o.y1.resize(y3.size());
    for (size_t k = 0; k < y3.size(); ++k) o.y1[k] = Activate(d.act, y3[k]);
    if (d.y2Out) o.y2 = y2;
    if (d.y3Out) o.y3 = y3;
    return o;
}

namespace {

struct RankState {
    std::vector<double> ws;        // user workspace in x elements: a2a region, ag region, asm slot
    std::vector<int> agTile;       // per ag-region element: the tile whose AllGather wrote it (-1 none)
    std::vector<double> y2buf;     // y2 (shard 1 copy, shard 0 assemble target when y2 is produced)
    std::vector<int> asmTile;      // per asm-slot row / y2 row (shard 0): tile that assembled it
};

}  // namespace

TwinReport RunTwin(const Args &a, const aag::Geom &g, const std::vector<RankData> &world)
{
    TwinReport rep;
    const uint64_t ep = g.ep, tp = g.tp;
    const uint64_t yRows = g.ep * g.C;
    aag::WsLayout wl = aag::Workspace(g, 2U);
    std::vector<RankState> st(ep * tp);
    rep.out.resize(ep * tp);
    auto fail = [&](const std::string &m) {
        if (rep.error.empty()) rep.error = m;
    };
    const uint64_t wsElems = wl.ringOffBytes / 2U;
    for (auto &s : st) {
        s.ws.assign(wsElems, std::nan(""));
        s.agTile.assign(wsElems, -1);
        s.y2buf.assign(g.El * yRows * g.H, std::nan(""));
        s.asmTile.assign(std::max<uint64_t>(g.El * yRows, wl.asmElems / std::max<uint64_t>(g.H, 1U) + 1U), -1);
    }
    for (uint64_t r = 0; r < ep * tp; ++r) {
        RankOut &o = rep.out[r];
        o.y1.assign(g.El * yRows * g.N, std::nan(""));
        o.cov1.assign(o.y1.size(), 0);
        o.cov2.assign(g.El * yRows * g.H, 0);
        if (g.y3Out) o.y3.assign(o.y1.size(), std::nan(""));
        o.cov3.assign(o.y1.size(), 0);
    }
    auto wr = [](uint64_t i, uint64_t t, uint64_t ep_) { return i + ep_ * t; };
    uint64_t cellsSeen = 0;
    for (uint32_t k = 0; k < aag::NumTiles(g); ++k) {
        if (aag::TileBegin(g, k) != cellsSeen || aag::TileEnd(g, k) <= cellsSeen) fail("tiles do not partition the cells");
        cellsSeen = aag::TileEnd(g, k);
        /* ---------------- communication of tile k (collectives are world-synchronous) */
        // AlltoAllV over each ep group (fixed t): sender j -> receiver i, every peer (itself included)
        const uint64_t blk = aag::A2ABlock(g, k);
        for (uint64_t t = 0; t < tp; ++t)
            for (uint64_t i = 0; i < ep; ++i)
                for (uint64_t j = 0; j < ep; ++j) {
                    const RankData &src = world[wr(j, t, ep)];
                    const uint64_t sd = aag::A2ASendDispl(g, k, i);
                    const uint64_t rd = wl.a2aOff + aag::A2ATileOff(g, k) + aag::A2ARecvDispl(g, k, j);
                    if (sd + blk > src.x.size()) fail("a2a send out of x");
                    if (aag::A2ARecvDispl(g, k, j) + blk > aag::A2ATileElems(g, k)) fail("a2a recv out of tile buffer");
                    if (aag::A2ATileOff(g, k) + aag::A2ATileElems(g, k) > wl.a2aElems) fail("a2a tile out of region");
                    for (uint64_t e = 0; e < blk; ++e) st[wr(i, t, ep)].ws.at(rd + e) = src.x[sd + e];
                }
        // AllGather over each tp group (fixed i) of the tile's AlltoAllV receive buffer
        const uint64_t cnt = aag::AGSendCount(g, k);
        for (uint64_t i = 0; i < ep; ++i)
            for (uint64_t t = 0; t < tp; ++t)
                for (uint64_t s = 0; s < tp; ++s) {
                    const RankState &src = st[wr(i, s, ep)];
                    const uint64_t sd = wl.a2aOff + aag::A2ATileOff(g, k);
                    const uint64_t rd = wl.agOff + aag::AGTileOff(g, k) + s * cnt;
                    if (aag::AGTileOff(g, k) + tp * cnt > wl.agElems) fail("ag tile out of region");
                    for (uint64_t e = 0; e < cnt; ++e) {
                        double v = src.ws.at(sd + e);
                        if (std::isnan(v)) fail("allgather sends an unwritten a2a element");
                        st[wr(i, t, ep)].ws.at(rd + e) = v;
                        st[wr(i, t, ep)].agTile.at(rd + e) = static_cast<int>(k);
                    }
                }
        /* ---------------- computation of tile k on every rank */
        for (uint64_t i = 0; i < ep; ++i)
            for (uint64_t t = 0; t < tp; ++t) {
                RankState &S = st[wr(i, t, ep)];
                RankOut &O = rep.out[wr(i, t, ep)];
                const RankData &me = world[wr(i, t, ep)];
                auto agRead = [&](uint64_t off) {
                    const uint64_t at = wl.agOff + off;
                    if (S.agTile.at(at) != static_cast<int>(k)) fail("a read of the ag region outside the tile just landed");
                    return S.ws.at(at);
                };
                auto a2aRead = [&](uint64_t off) {  // only tile k's own AlltoAllV receive buffer
                    if (off < aag::A2ATileOff(g, k) || off >= aag::A2ATileOff(g, k) + aag::A2ATileElems(g, k)) {
                        fail("a read of the a2a region outside the tile just received");
                    }
                    return S.ws.at(wl.a2aOff + off);
                };
                // y2 copy (shard 1) / assemble (shard 0)
                if (g.shard == 0U || g.y2Out) {
                    for (uint64_t q = 0; q < aag::NumSegments(g, k); ++q) {
                        const aag::Segment sg = aag::SegmentAt(g, k, q);
                        for (uint64_t b = 0; b < aag::PiecesPerSegment(g); ++b) {
                            const aag::Piece pc = aag::PieceAt(g, i, t, k, sg, b);
                            for (uint64_t r = 0; r < pc.rows; ++r)
                                for (uint64_t h = 0; h < g.Hx; ++h) {
                                    const uint64_t so = pc.srcOff + r * g.Hx + h;
                                    const double v = pc.srcKind == 0U ? me.x.at(so) : agRead(so);
                                    if (std::isnan(v)) fail("a copy reads an unwritten element");
                                    const uint64_t dofs = pc.dstOff + r * g.H + h;
                                    if (pc.dstKind == 0U) {
                                        S.y2buf.at(dofs) = v;
                                        O.cov2.at(dofs) += 1;
                                        S.asmTile.at(dofs / g.H) = static_cast<int>(k);
                                    } else {
                                        if (dofs >= wl.asmElems) fail("assemble beyond the asm slot");
                                        S.ws.at(wl.asmOff + dofs) = v;
                                        S.asmTile.at(dofs / g.H) = static_cast<int>(k);
                                    }
                                }
                        }
                    }
                }
                // units: own rows (shard 1) then the others
                auto unit = [&](const aag::Unit &u) {
                    for (uint64_t r = 0; r < u.tm; ++r) {
                        const uint64_t aRow = u.aOff + r * g.H;
                        if (u.aSrc == 2U && S.asmTile.at(aRow / g.H) != static_cast<int>(k)) {
                            fail("a unit reads a row not assembled in this tile");
                        }
                        for (uint64_t n = u.n0; n < u.n0 + u.tn; ++n) {
                            double acc = 0.0;
                            for (uint64_t h = 0; h < g.H; ++h) {
                                double av;
                                if (u.aSrc == aag::kSrcX) av = me.x.at(aRow + h);
                                else if (u.aSrc == aag::kSrcAg) av = agRead(aRow + h);
                                else if (u.aSrc == aag::kSrcA2a) av = a2aRead(aRow + h);
                                else av = g.y2Out ? S.y2buf.at(aRow + h) : S.ws.at(wl.asmOff + aRow + h);
                                acc += av * me.weight.at(aag::WeightOff(g, u.e, h, n));
                            }
                            if (g.hasBias) acc += me.bias.at(u.e * g.N + n);
                            const uint64_t yo = (u.yRow + r) * g.N + n;
                            O.y1.at(yo) = Activate(g.act, acc);
                            O.cov1.at(yo) += 1;
                            if (g.y3Out) {
                                O.y3.at(yo) = acc;
                                O.cov3.at(yo) += 1;
                            }
                        }
                    }
                };
                for (uint32_t ph : {aag::kOwnRows, aag::kPeerRows, aag::kFarRows}) {
                    for (uint64_t q = 0; q < aag::NumSegments(g, k); ++q) {
                        const aag::Segment sg = aag::SegmentAt(g, k, q);
                        for (uint64_t u = 0; u < aag::PhaseUnitsOfSegment(g, ph, sg.cL); ++u) {
                            const aag::Unit un = aag::PhaseUnit(g, i, t, k, sg, ph, u);
                            const uint32_t want = g.shard == 0U      ? aag::kSrcAssembled
                                                  : ph == aag::kOwnRows  ? aag::kSrcX
                                                  : ph == aag::kPeerRows ? aag::kSrcA2a
                                                                         : aag::kSrcAg;
                            if (un.aSrc != want) fail("a unit reads its rows from another buffer than its phase's");
                            unit(un);
                        }
                    }
                }
            }
    }
    if (cellsSeen != aag::Cells(g)) fail("tiles do not cover the cells");
    for (uint64_t r = 0; r < ep * tp; ++r) {
        if (g.y2Out) rep.out[r].y2 = st[r].y2buf;
    }
    (void)a;
    return rep;
}

}  // namespace moe_mc2_test
