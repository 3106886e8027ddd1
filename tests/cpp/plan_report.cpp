// plan_report: the cost model's predictions (op_host/core/aag_bmm_planner.*) for the seed shapes and
// MindSpeed's test shape: the chosen plan, the same model on one tile, CANN's reference schedule and the
// issue-9 kernel. Predictions of a model with stated constants, not NPU measurements.
// With arguments: plan_report ep tp shard E C H M [act] [bias 0|1]
#include <cstdio>
#include <cstdlib>

#include "aag_bmm_planner.h"

using moe_mc2::Args;

static void Line(const moe_mc2::Prediction &p)
{
    std::printf("  %-16s makespan %8.1f us  ratio %.3f  HBM %7.1f MiB (+%5.1f MiB workspace)  %s\n",
                p.schedule.c_str(), p.makespan * 1e6, p.makespan / p.bound, p.bytes.HbmData() / 1048576.0,
                p.bytes.hbmWorkspace / 1048576.0, p.tiling.c_str());
}

static int Report(const char *title, int64_t ep, int64_t tp, int64_t shard, int64_t E, int64_t C, int64_t H, int64_t M,
                  int64_t act, bool bias)
{
    Args a = moe_mc2::ArgsFor(ep, tp, shard, E, C, H, M);
    a.actType = act;
    if (bias) {
        a.hasBias = true;
        a.bias = {E / ep, 1, M / tp};
    }
    auto v = moe_mc2::Validate(a);
    if (!v.ok()) {
        std::printf("%s: invalid: %s\n", title, v.message.c_str());
        return 1;
    }
    const moe_mc2::Machine m;
    const moe_mc2::Plan p = moe_mc2::PlanTiles(a, m);
    const moe_mc2::Dims d = moe_mc2::DeriveDims(a);
    std::printf("%s: ep=%lld tp=%lld shard=%lld E=%lld C=%lld H=%lld M=%lld fp16 act=%lld bias=%d\n", title,
                (long long)ep, (long long)tp, (long long)shard, (long long)E, (long long)C, (long long)H, (long long)M,
                (long long)act, bias ? 1 : 0);
    std::printf("  bound %.1f us = max(comm %.1f, compute %.1f); HBM floor %.1f MiB; %u tilings evaluated\n",
                p.pred.bound * 1e6, p.pred.commIdeal * 1e6, p.pred.computeIdeal * 1e6, p.pred.hbmFloor / 1048576.0,
                p.candidates);
    Line(p.pred);
    Line(moe_mc2::Evaluate(a, moe_mc2::MakeGeom(a, {static_cast<uint64_t>(d.El * d.Rx)}, m), m));
    Line(moe_mc2::EvaluateReference(a, m));
    Line(moe_mc2::EvaluateLegacy(a, m));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 8) {
        return Report("custom", std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
                      std::atoll(argv[5]), std::atoll(argv[6]), std::atoll(argv[7]), argc >= 9 ? std::atoll(argv[8]) : 0,
                      argc >= 10 && std::atoll(argv[9]) != 0);
    }
    int rc = 0;
    rc |= Report("(a) seed, GELU + bias", 4, 2, 1, 16, 1024, 1024, 8192, 1, true);
    rc |= Report("(a') seed, act None", 4, 2, 1, 16, 1024, 1024, 8192, 0, false);
    rc |= Report("(b) MindSpeed test shape", 4, 2, 1, 16, 282, 12288, 12288, 0, false);
    rc |= Report("(c) MindSpeed example shape", 4, 2, 1, 4, 1024, 1024, 8192, 0, false);
    return rc;
}
