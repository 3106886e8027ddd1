// Host twin: executes a plan for a simulated ep x tp world on the CPU, using
// exactly the offset arithmetic of op_kernel/aag_bmm_offsets.h, and a
// reference written straight from the contract's index formulas (docs/contract.md §2).
#ifndef MOE_MC2_TESTS_HOST_TWIN_H
#define MOE_MC2_TESTS_HOST_TWIN_H

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "aag_bmm_offsets.h"
#include "aag_bmm_rules.h"

namespace moe_mc2_test {

struct RankData {
    std::vector<double> x;       // (E, Rx, Hx)
    std::vector<double> weight;  // stored layout: (El, H, N) or transposed (El, N, H)
    std::vector<double> bias;    // (El, N) when present
};

struct RankOut {
    std::vector<double> y1, y2, y3;        // y2 / y3 empty when not produced
    std::vector<int> cov1, cov2, cov3;     // writes per element (cov2 covers Y2buf)
};

struct TwinReport {
    std::vector<RankOut> out;  // index = world rank i + ep * t
    std::string error;         // first inconsistency found while executing (empty == none)
};

std::vector<RankData> MakeWorld(const moe_mc2::Args &a, std::mt19937_64 &rng);

/* run plan g on every rank of the world */
TwinReport RunTwin(const moe_mc2::Args &a, const aag::Geom &g, const std::vector<RankData> &world);

/* the contract's reference for rank (i, t) */
RankOut Reference(const moe_mc2::Args &a, const std::vector<RankData> &world, int64_t i, int64_t t);

double Activate(int64_t act, double v);

}  // namespace moe_mc2_test

#endif
