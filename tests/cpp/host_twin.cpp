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
    // y2 straight from SPEC's formulas
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
    std::vector<double> ws;        // user workspace, in elements (acc scratch unused by the twin)
    std::vector<double> y2buf;     // y2 or the scratch region, shape (El, ep*C, H)
    std::vector<int> y2ready;      // per Y2buf row: tile that assembled it (-1 none)
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
    for (auto &s : st) {
        s.ws.assign(wl.accOffBytes / 2U, std::nan(""));
        s.y2buf.assign(g.El * yRows * g.H, std::nan(""));
        s.y2ready.assign(g.El * yRows, -1);
    }
    for (uint64_t r = 0; r < ep * tp; ++r) {
        RankOut &o = rep.out[r];
        o.y1.assign(g.El * yRows * g.N, std::nan(""));
        o.cov1.assign(o.y1.size(), 0);
        o.cov2.assign(g.El * yRows * g.H, 0);
        if (g.y3Out) {
            o.y3.assign(o.y1.size(), std::nan(""));
        }
        o.cov3.assign(o.y1.size(), 0);
    }
    auto wr = [](uint64_t i, uint64_t t, uint64_t ep_) { return i + ep_ * t; };

    const uint32_t nt = aag::NumTiles(g);
    for (uint32_t k = 0; k < nt; ++k) {
        /* ---------------- communication of tile k (collectives are world-synchronous) */
        if (k == 0U) {
            if (g.shard == 0U) {  // AllGather over tp of x[i*El .. (i+1)*El)
                uint64_t cnt = aag::AGSendCount(g, 0U);
                for (uint64_t i = 0; i < ep; ++i)
                    for (uint64_t t = 0; t < tp; ++t)
                        for (uint64_t s = 0; s < tp; ++s) {
                            const RankData &src = world[wr(i, s, ep)];
                            uint64_t sd = aag::LocalAGSendDispl(g, i);
                            for (uint64_t e = 0; e < cnt; ++e) {
                                st[wr(i, t, ep)].ws[wl.localAgOff + s * cnt + e] = src.x[sd + e];
                            }
                        }
            }
        } else {
            aag::TileRange tr = aag::Tile(g, k);
            if (!(tr.eL == 1U || tr.cL == g.Rx)) fail("tile block not contiguous");
            // AlltoAllV over each ep group (fixed t): sender j -> receiver i
            for (uint64_t t = 0; t < tp; ++t)
                for (uint64_t i = 0; i < ep; ++i)
                    for (uint64_t j = 0; j < ep; ++j) {
                        uint64_t sendCnt = aag::A2ASendCount(g, k, j, i);  // j's count towards i
                        uint64_t recvCnt = aag::A2ASendCount(g, k, i, j);  // i's count for j (symmetric)
                        if (sendCnt != recvCnt) fail("a2a counts not symmetric");
                        if (sendCnt == 0U) continue;
                        const RankData &src = world[wr(j, t, ep)];
                        uint64_t sd = aag::A2ASendDispl(g, k, i);
                        uint64_t rd = wl.a2aOff + aag::A2ATileOff(g, k) + aag::A2ARecvDispl(g, k, i, j);
                        if (sd + sendCnt > src.x.size()) fail("a2a send out of x");
                        if (aag::A2ARecvDispl(g, k, i, j) + recvCnt > aag::A2ATileElems(g, k))
                            fail("a2a recv out of tile buffer");
                        for (uint64_t e = 0; e < sendCnt; ++e) st[wr(i, t, ep)].ws[rd + e] = src.x[sd + e];
                    }
            // AllGather over each tp group (fixed i)
            uint64_t cnt = aag::AGSendCount(g, k);
            for (uint64_t i = 0; i < ep; ++i)
                for (uint64_t t = 0; t < tp; ++t)
                    for (uint64_t s = 0; s < tp; ++s) {
                        const RankState &src = st[wr(i, s, ep)];
                        uint64_t sd = wl.a2aOff + aag::A2ATileOff(g, k);
                        uint64_t rd = wl.agOff + aag::AGTileOff(g, k) + s * cnt;
                        for (uint64_t e = 0; e < cnt; ++e) {
                            double v = src.ws[sd + e];
                            if (std::isnan(v)) fail("allgather sends an unwritten a2a element");
                            st[wr(i, t, ep)].ws[rd + e] = v;
                        }
                    }
        }
        /* ---------------- computation of tile k on every rank */
        for (uint64_t i = 0; i < ep; ++i)
            for (uint64_t t = 0; t < tp; ++t) {
                RankState &S = st[wr(i, t, ep)];
                RankOut &O = rep.out[wr(i, t, ep)];
                const RankData &me = world[wr(i, t, ep)];
                // assemble
                for (uint64_t b = 0; b < aag::NumCopyBlocks(g, k); ++b) {
                    aag::CopyBlock cb = aag::CopyBlockAt(g, i, t, k, b);
                    if (cb.skip) continue;
                    for (uint64_t r = 0; r < cb.rows; ++r) {
                        for (uint64_t h = 0; h < g.Hx; ++h) {
                            uint64_t so = cb.srcOff + r * g.Hx + h;
                            double v;
                            if (cb.srcKind == 0U) v = me.x.at(so);
                            else if (cb.srcKind == 1U) v = S.ws.at(wl.localAgOff + so);
                            else v = S.ws.at(wl.agOff + so);
                            if (std::isnan(v)) fail("assemble reads an unwritten element");
                            uint64_t dofs = cb.dstOff + r * g.H + h;
                            S.y2buf.at(dofs) = v;
                            O.cov2.at(dofs) += 1;
                        }
                        uint64_t rowIdx = (cb.dstOff / g.H);  // e*yRows + row
                        S.y2ready.at(rowIdx + r) = static_cast<int>(k);
                    }
                }
                // matmul runs + epilogue
                for (uint64_t ri = 0; ri < aag::NumRuns(g, k); ++ri) {
                    aag::Run run = aag::RunAt(g, i, t, k, ri);
                    uint64_t aOff = aag::RunAOff(g, run), yOff = aag::RunYOff(g, run);
                    for (uint64_t r = 0; r < run.rows; ++r) {
                        uint64_t rowIdx = run.e * yRows + run.row0 + r;
                        if (S.y2ready.at(rowIdx) < 0 || S.y2ready.at(rowIdx) > static_cast<int>(k))
                            fail("matmul reads a row before it is assembled");
                        for (uint64_t n = 0; n < g.N; ++n) {
                            double acc = 0.0;
                            for (uint64_t h = 0; h < g.H; ++h) {
                                acc += S.y2buf.at(aOff + r * g.H + h) * me.weight.at(aag::WeightOff(g, run.e, h, n));
                            }
                            if (g.hasBias) acc += me.bias.at(aag::RunBiasOff(g, run) + n);
                            uint64_t yo = yOff + r * g.N + n;
                            O.y1.at(yo) = Activate(g.act, acc);
                            O.cov1.at(yo) += 1;
                            if (g.y3Out) {
                                O.y3.at(yo) = acc;
                                O.cov3.at(yo) += 1;
                            }
                        }
                    }
                }
            }
    }
    for (uint64_t r = 0; r < ep * tp; ++r) {
        if (g.y2Out) rep.out[r].y2 = st[r].y2buf;
    }
    (void)a;
    return rep;
}

}  // namespace moe_mc2_test
