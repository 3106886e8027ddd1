// The real kernel in the CPU model, end to end from C++ (so `scripts/cpp.sh test` runs it without
// Python): inputs rounded to fp16, the host twin's reference (the contract's formulas) in double, and the tolerance of
// python/moe_mc2/kernel_sim.py (half an fp16 ulp + (K+1) 2^-24 S, y2 bit-exact). The exhaustive
// matrix is tests/test_kernel_sim.py.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "host_twin.h"
#include "kernel_sim/sim_abi.h"
#include "kernel_sim/sim_fp.h"

using moe_mc2::Args;
using namespace moe_mc2_test;

namespace {

double RoundHalf(double v) { return aag_sim::HalfBitsToFloat(aag_sim::FloatToHalfBits(static_cast<float>(v))); }

double UlpHalf(double v)
{
    int e = 0;
    std::frexp(std::max(std::fabs(v), std::ldexp(1.0, -14)), &e);
    return std::ldexp(1.0, std::max(e - 1, -14) - 10);
}

std::vector<uint16_t> ToHalf(const std::vector<double> &v)
{
    std::vector<uint16_t> o(v.size());
    for (size_t k = 0; k < v.size(); ++k) o[k] = aag_sim::FloatToHalfBits(static_cast<float>(v[k]));
    return o;
}

struct Case {
    int64_t ep, tp, shard, act, E, C, H, M;
    bool bias, transposeW, y2, y3;
};

void RunCase(const Case &k)
{
    Args a = moe_mc2::ArgsFor(k.ep, k.tp, k.shard, k.E, k.C, k.H, k.M);
    a.actType = k.act;
    a.hasBias = k.bias;
    if (k.bias) a.bias = {k.E / k.ep, k.M / k.tp};
    a.transposeWeight = k.transposeW;
    a.y2Flag = k.y2;
    a.y3Flag = k.y3;
    ASSERT_TRUE(moe_mc2::Validate(a).ok());
    moe_mc2::Dims d = moe_mc2::DeriveDims(a);
    std::mt19937_64 rng(42);
    std::vector<RankData> world = MakeWorld(a, rng);
    for (auto &r : world) {  // fp16 inputs; the reference then sees exactly what the kernel sees
        for (auto &v : r.x) v = RoundHalf(v);
        for (auto &v : r.weight) v = RoundHalf(v / std::sqrt(static_cast<double>(k.H)));
        for (auto &v : r.bias) v = RoundHalf(v);
    }
    const size_t nr = world.size();
    std::vector<std::vector<uint16_t>> x(nr), w(nr), b(nr), y1(nr), y2(nr), y3(nr);
    std::vector<void *> px(nr), pw(nr), pb(nr), py1(nr), py2(nr), py3(nr);
    const size_t rows = static_cast<size_t>(d.El * d.ep * d.C);
    for (size_t r = 0; r < nr; ++r) {
        x[r] = ToHalf(world[r].x);
        w[r] = ToHalf(world[r].weight);
        b[r] = ToHalf(world[r].bias);
        y1[r].assign(rows * d.N, 0);
        y2[r].assign(d.y2Out ? rows * d.H : 0, 0);
        y3[r].assign(d.y3Out ? rows * d.N : 0, 0);
        px[r] = x[r].data();
        pw[r] = w[r].data();
        pb[r] = b[r].empty() ? nullptr : b[r].data();
        py1[r] = y1[r].data();
        py2[r] = y2[r].empty() ? nullptr : y2[r].data();
        py3[r] = y3[r].empty() ? nullptr : y3[r].data();
    }
    AagSimCall c{};
    c.ep = k.ep;
    c.tp = k.tp;
    c.shard = k.shard;
    c.act = k.act;
    c.E = k.E;
    c.C = k.C;
    c.H = k.H;
    c.M = k.M;
    c.bias = k.bias ? 2 : 0;
    c.transposeWeight = k.transposeW;
    c.y2Flag = k.y2;
    c.y3Flag = k.y3;
    c.aicPerRank = 2;
    c.ubBytes = 192 * 1024;
    c.sysWorkspaceBytes = 64 * 1024;
    c.seed = 5;
    c.maxDelay = 48;
    c.raceCheck = 1;
    c.watchdogSeconds = 20.0;
    c.kernel = "aag";
    c.x = px.data();
    c.weight = pw.data();
    c.biasData = pb.data();
    c.y1 = py1.data();
    c.y2 = py2.data();
    c.y3 = py3.data();
    std::string report(1 << 20, '\0');
    const int rc = aag_sim_run(&c, &report[0], report.size());
    ASSERT_EQ(rc, 0) << report.c_str();
    const double u = std::ldexp(1.0, -24);
    for (int64_t t = 0; t < d.tp; ++t) {
        for (int64_t i = 0; i < d.ep; ++i) {
            const size_t r = static_cast<size_t>(i + d.ep * t);
            RankOut ref = Reference(a, world, i, t);
            Args noAct = a;
            noAct.actType = 0;
            RankOut pre = Reference(noAct, world, i, t);
            // S = |y2| @ |w| + |bias| from the twin's y2 (always available through a y2 run)
            Args withY2 = noAct;
            withY2.y2Flag = true;
            std::vector<double> g2 = Reference(withY2, world, i, t).y2;
            for (size_t e = 0, idx = 0; e < static_cast<size_t>(d.El); ++e) {
                for (size_t row = 0; row < static_cast<size_t>(d.ep * d.C); ++row) {
                    for (size_t n = 0; n < static_cast<size_t>(d.N); ++n, ++idx) {
                        double s = 0;
                        for (size_t h = 0; h < static_cast<size_t>(d.H); ++h) {
                            double wv = a.transposeWeight ? world[r].weight[(e * d.N + n) * d.H + h]
                                                          : world[r].weight[(e * d.H + h) * d.N + n];
                            s += std::fabs(g2[(e * d.ep * d.C + row) * d.H + h] * wv);
                        }
                        if (a.hasBias) s += std::fabs(world[r].bias[e * d.N + n]);
                        const double slope = d.act ? 1.2 : 1.0;
                        const double dd = slope * (d.H + 1) * u * s + (d.act ? std::ldexp(1.0, -16) * std::fabs(pre.y1[idx]) : 0);
                        const double got = aag_sim::HalfBitsToFloat(y1[r][idx]);
                        ASSERT_LE(std::fabs(got - ref.y1[idx]), 0.5 * UlpHalf(std::fabs(ref.y1[idx]) + dd) + dd)
                            << "rank " << r << " y1[" << idx << "]";
                        if (d.y3Out) {
                            const double d3 = (d.H + 1) * u * s;
                            const double got3 = aag_sim::HalfBitsToFloat(y3[r][idx]);
                            ASSERT_LE(std::fabs(got3 - ref.y3[idx]), 0.5 * UlpHalf(std::fabs(ref.y3[idx]) + d3) + d3);
                        }
                    }
                }
            }
            if (d.y2Out) {
                for (size_t k2 = 0; k2 < y2[r].size(); ++k2) {
                    ASSERT_EQ(aag_sim::HalfBitsToFloat(y2[r][k2]), ref.y2[k2]) << "rank " << r << " y2[" << k2 << "]";
                }
            }
        }
    }
}

}  // namespace

TEST(KernelSimRun, Shard1GeluBiasY2Y3)
{
    RunCase(Case{2, 2, 1, 1, 4, 6, 40, 76, true, false, true, true});
}

TEST(KernelSimRun, Shard0TransposedSiluY3)
{
    RunCase(Case{4, 2, 0, 2, 8, 6, 36, 30, false, true, false, true});
}

TEST(KernelSimRun, NoneOddSizes)
{
    RunCase(Case{2, 2, 1, 0, 2, 2, 18, 34, true, false, true, false});
}

TEST(KernelSimRun, ProbeIsReported)
{
    AagSimCall c{};
    c.ep = 2;
    c.tp = 2;
    c.shard = 1;
    c.E = 4;
    c.C = 8;
    c.H = 32;
    c.M = 32;
    c.aicPerRank = 2;
    c.ubBytes = 192 * 1024;
    c.sysWorkspaceBytes = 64 * 1024;
    c.watchdogSeconds = 20.0;
    c.countOnly = 1;
    c.kernel = "missing_syncall";
    std::vector<void *> none(4, nullptr);
    c.x = c.weight = c.biasData = c.y1 = c.y2 = c.y3 = none.data();
    std::string report(1 << 20, '\0');
    EXPECT_EQ(aag_sim_run(&c, &report[0], report.size()), 1);
    EXPECT_NE(report.find("deadlock"), std::string::npos) << report.c_str();
}
