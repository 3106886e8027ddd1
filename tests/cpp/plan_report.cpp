// plan_report: prints the planner's choice, predicted makespan and no-overlap
// sum. Without arguments it reports the two reference configurations; with
// arguments: plan_report ep tp shard E C H M [float16|bfloat16] [-v]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "aag_bmm_planner.h"

using moe_mc2::Args;

static int Report(const char *title, int64_t ep, int64_t tp, int64_t shard, int64_t E, int64_t C, int64_t H, int64_t M,
                  moe_mc2::DType dt, bool verbose)
{
    Args a = moe_mc2::ArgsFor(ep, tp, shard, E, C, H, M, dt);
    auto v = moe_mc2::Validate(a);
    if (!v.ok()) {
        std::printf("%s: invalid: %s\n", title, v.message.c_str());
        return 1;
    }
    moe_mc2::Plan p = moe_mc2::PlanTiles(a);
    double comm = 0, comp = 0;
    for (const auto &t : p.tiles) {
        comm += t.comm;
        comp += t.comp;
    }
    std::printf("%s\n", title);
    std::printf("  ep=%lld tp=%lld shard=%lld E=%lld C=%lld H=%lld M=%lld dtype=%s  x=(%lld,%lld,%lld) weight=(%lld,%lld,%lld)\n",
                (long long)ep, (long long)tp, (long long)shard, (long long)E, (long long)C, (long long)H, (long long)M,
                moe_mc2::DTypeName(dt), (long long)a.x[0], (long long)a.x[1], (long long)a.x[2],
                (long long)a.weight[0], (long long)a.weight[1], (long long)a.weight[2]);
    std::printf("  plan: eTile=%llu cTile=%llu remote tiles=%u (+1 local block), %u shapes evaluated\n",
                (unsigned long long)p.g.eTile, (unsigned long long)p.g.cTile, aag::NumRemoteTiles(p.g), p.candidates);
    std::printf("  predicted makespan   = %10.1f us\n", p.makespan * 1e6);
    std::printf("  no-overlap sum       = %10.1f us  (comm %.1f us + compute %.1f us)\n", p.noOverlap * 1e6,
                comm * 1e6, comp * 1e6);
    std::printf("  overlap gain         = %10.2fx\n", p.noOverlap / p.makespan);
    std::printf("  workspace            = %10.1f MiB\n", moe_mc2::WorkspaceBytes(p.g, moe_mc2::DTypeBytes(dt)) / 1048576.0);
    if (verbose) {
        for (size_t k = 0; k < p.tiles.size(); ++k) {
            std::printf("    tile %2zu comm %9.1f us  comp %9.1f us  comm_end %9.1f  comp_end %9.1f\n", k,
                        p.tiles[k].comm * 1e6, p.tiles[k].comp * 1e6, p.tiles[k].commEnd * 1e6,
                        p.tiles[k].compEnd * 1e6);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool verbose = false;
    if (argc > 1 && std::strcmp(argv[argc - 1], "-v") == 0) {
        verbose = true;
        --argc;
    }
    if (argc >= 8) {
        moe_mc2::DType dt = argc >= 9 ? moe_mc2::DTypeFromName(argv[8]) : moe_mc2::DType::kFloat16;
        return Report("custom", std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
                      std::atoll(argv[5]), std::atoll(argv[6]), std::atoll(argv[7]), dt, verbose);
    }
    int rc = 0;
    rc |= Report("(a) seed shapes", 4, 2, 1, 4, 1024, 1024, 8192, moe_mc2::DType::kFloat16, verbose);
    rc |= Report("(b) E=16 C=282 H=12288 M=12288, shard 1", 4, 2, 1, 16, 282, 12288, 12288, moe_mc2::DType::kFloat16,
                 verbose);
    rc |= Report("(b') same, shard 0", 4, 2, 0, 16, 282, 12288, 12288, moe_mc2::DType::kFloat16, verbose);
    return rc;
}
