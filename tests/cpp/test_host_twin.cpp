// The host twin: the kernel's offset arithmetic, executed for a simulated
// ep x tp world, must reproduce the contract's formulas on every rank and write every
// output element exactly once.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <sstream>

#include "aag_bmm_planner.h"
#include "host_twin.h"
#include "vectors_io.h"

using moe_mc2::Args;
using namespace moe_mc2_test;

namespace {

struct Stats {
    std::set<int> shards, acts;
    int crossing = 0, el1 = 0, elMany = 0, multiTile = 0, multiPanel = 0, multiChunk = 0, bias = 0, y2 = 0, y3 = 0,
        transposed = 0;
};

::testing::AssertionResult SameArray(const std::vector<double> &got, const std::vector<double> &want,
                                     const char *what, uint64_t rank)
{
    if (got.size() != want.size()) {
        return ::testing::AssertionFailure() << what << " rank " << rank << " size " << got.size() << " vs "
                                             << want.size();
    }
    for (size_t k = 0; k < got.size(); ++k) {
        double tol = 1e-9 * (1.0 + std::fabs(want[k]));
        if (!(std::fabs(got[k] - want[k]) <= tol)) {
            return ::testing::AssertionFailure() << what << " rank " << rank << " element " << k << ": " << got[k]
                                                 << " vs " << want[k];
        }
    }
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult ExactlyOnce(const std::vector<int> &cov, const char *what, uint64_t rank)
{
    for (size_t k = 0; k < cov.size(); ++k) {
        if (cov[k] != 1) {
            return ::testing::AssertionFailure() << what << " rank " << rank << " element " << k << " written "
                                                 << cov[k] << " times";
        }
    }
    return ::testing::AssertionSuccess();
}

void CheckPlan(const Args &a, const aag::Geom &g, std::mt19937_64 &rng, const std::string &label)
{
    SCOPED_TRACE(label);
    auto world = MakeWorld(a, rng);
    TwinReport rep = RunTwin(a, g, world);
    ASSERT_EQ(rep.error, "");
    moe_mc2::Dims d = moe_mc2::DeriveDims(a);
    for (int64_t t = 0; t < d.tp; ++t) {
        for (int64_t i = 0; i < d.ep; ++i) {
            uint64_t r = static_cast<uint64_t>(i + d.ep * t);
            RankOut want = Reference(a, world, i, t);
            const RankOut &got = rep.out[r];
            ASSERT_TRUE(SameArray(got.y1, want.y1, "y1", r));
            ASSERT_TRUE(SameArray(got.y2, want.y2, "y2", r));
            ASSERT_TRUE(SameArray(got.y3, want.y3, "y3", r));
            ASSERT_TRUE(ExactlyOnce(got.cov1, "y1", r));
            if (d.y2Out) {
                ASSERT_TRUE(ExactlyOnce(got.cov2, "y2", r));
            } else {
                for (int c : got.cov2) ASSERT_EQ(c, 0);
            }
            if (d.y3Out) {
                ASSERT_TRUE(ExactlyOnce(got.cov3, "y3", r));
            } else {
                for (int c : got.cov3) ASSERT_EQ(c, 0);
            }
        }
    }
}

Args RandomArgs(std::mt19937_64 &rng)
{
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Args a;
    const int64_t sizes[] = {2, 4, 8};
    a.ep = sizes[pick(0, 1)];
    a.tp = sizes[pick(0, 1)];
    if (pick(0, 9) == 0) {  // occasionally a wider group with tiny tensors
        (pick(0, 1) ? a.ep : a.tp) = 8;
    }
    a.shardType = pick(0, 1);
    a.actType = pick(0, 4);
    int64_t El = pick(0, 2) == 0 ? 1 : pick(2, 5);
    int64_t Rx = pick(0, 3) == 0 ? pick(17, 40) : pick(1, 9);  // sometimes more rows than a 16-row unit
    int64_t Hx = pick(1, 6);
    int64_t N = pick(0, 3) == 0 ? pick(17, 40) : pick(1, 7);   // sometimes more columns than a 16-column unit
    a.x = {El * a.ep, Rx, Hx};
    int64_t H = a.shardType == 1 ? Hx : Hx * a.tp;
    a.weight = {El, H, N};
    a.xDtype = a.weightDtype = pick(0, 1) ? moe_mc2::DType::kFloat16 : moe_mc2::DType::kBFloat16;
    int b = pick(0, 2);
    a.hasBias = b != 0;
    if (b == 1) a.bias = {El, N};
    if (b == 2) a.bias = {El, 1, N};
    a.biasDtype = a.xDtype == moe_mc2::DType::kFloat16 ? moe_mc2::DType::kFloat16 : moe_mc2::DType::kFloat32;
    a.transposeWeight = pick(0, 1);
    a.y2Flag = pick(0, 1);
    a.y3Flag = pick(0, 1);
    a.groupEp = "ep";
    a.groupTp = "tp";
    return a;
}

/* random tile boundaries (tiles may span experts), a random launch and small random units */
aag::Geom RandomTiling(const Args &a, std::mt19937_64 &rng)
{
    moe_mc2::Dims d = moe_mc2::DeriveDims(a);
    auto pick = [&](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };
    const uint64_t total = static_cast<uint64_t>(d.El * d.Rx);
    const uint64_t n = pick(1, std::min<uint64_t>(total, aag::kMaxTiles));
    std::set<uint64_t> cuts;
    while (cuts.size() + 1U < n) cuts.insert(pick(1, total - 1U));
    std::vector<uint64_t> ends(cuts.begin(), cuts.end());
    ends.push_back(total);
    moe_mc2::Machine m;
    m.aicNum = static_cast<uint32_t>(pick(1, 3));
    m.aivNum = 2U * m.aicNum;
    m.unitM = static_cast<uint32_t>(16U * pick(1, 2));
    m.unitN = static_cast<uint32_t>(16U * pick(1, 2));
    m.ownAhead = static_cast<int32_t>(pick(0, 3));
    m.peerAhead = static_cast<int32_t>(pick(0, 4)) - 1;  // -1: the peer rows with the far rows
    return moe_mc2::MakeGeom(a, ends, m);
}

}  // namespace

TEST(HostTwin, RandomShapesPlannerAndRandomTilings)
{
    std::mt19937_64 rng(20240611);
    Stats stats;
    const int kShapes = 120;
    for (int n = 0; n < kShapes; ++n) {
        Args a = RandomArgs(rng);
        auto v = moe_mc2::Validate(a);
        ASSERT_TRUE(v.ok()) << v.message;
        std::ostringstream label;
        label << "shape " << n << " ep=" << a.ep << " tp=" << a.tp << " shard=" << a.shardType
              << " act=" << a.actType << " x=(" << a.x[0] << "," << a.x[1] << "," << a.x[2] << ") N=" << a.weight[2]
              << " bias=" << a.hasBias << " tw=" << a.transposeWeight << " y2=" << a.y2Flag << " y3=" << a.y3Flag;
        moe_mc2::Plan plan = moe_mc2::PlanTiles(a, moe_mc2::Machine{});
        CheckPlan(a, plan.g, rng, label.str() + " planner");
        aag::Geom rg = RandomTiling(a, rng);
        std::ostringstream l2;
        l2 << label.str() << " tiles";
        for (uint32_t k = 0; k < rg.nTiles; ++k) l2 << " " << rg.tileEnd[k];
        l2 << " unit " << rg.unitM << "x" << rg.unitN;
        CheckPlan(a, rg, rng, l2.str());
        if (HasFatalFailure()) return;
        stats.shards.insert(static_cast<int>(a.shardType));
        stats.acts.insert(static_cast<int>(a.actType));
        for (uint32_t k = 0; k < rg.nTiles; ++k) stats.crossing += aag::NumSegments(rg, k) > 1U;
        stats.el1 += rg.El == 1;
        stats.elMany += rg.El > 1;
        stats.multiTile += rg.nTiles > 1;
        stats.multiPanel += aag::NumPanels(rg) > 1U;
        stats.multiChunk += rg.Rx > rg.unitM;
        stats.bias += a.hasBias;
        stats.y2 += a.y2Flag;
        stats.y3 += rg.y3Out;
        stats.transposed += a.transposeWeight;
    }
    // the random sweep must really cover what it claims
    EXPECT_EQ(stats.shards.size(), 2U);
    EXPECT_EQ(stats.acts.size(), 5U);
    EXPECT_GT(stats.crossing, 20);
    EXPECT_GT(stats.el1, 5);
    EXPECT_GT(stats.elMany, 5);
    EXPECT_GT(stats.multiTile, 20);
    EXPECT_GT(stats.multiPanel, 5);
    EXPECT_GT(stats.multiChunk, 5);
    EXPECT_GT(stats.bias, 10);
    EXPECT_GT(stats.y2, 10);
    EXPECT_GT(stats.y3, 10);
    EXPECT_GT(stats.transposed, 10);
}

TEST(HostTwin, EveryTilingOfUpToThreeTilesOfOneShapePerShard)
{
    std::mt19937_64 rng(7);
    for (int shard = 0; shard <= 1; ++shard) {
        Args a;
        a.ep = 2;
        a.tp = 2;
        a.shardType = shard;
        a.actType = 1;
        a.x = {6, 5, 3};
        a.weight = {3, shard == 1 ? 3 : 6, 4};
        a.hasBias = true;
        a.bias = {3, 1, 4};
        a.y2Flag = true;
        a.y3Flag = true;
        a.groupEp = "e";
        a.groupTp = "t";
        ASSERT_TRUE(moe_mc2::Validate(a).ok());
        moe_mc2::Machine m;
        m.aicNum = 2;
        m.aivNum = 4;
        m.unitM = 16;
        m.unitN = 16;
        const uint64_t total = 15;  // El 3 x Rx 5 cells
        int count = 0;
        for (uint64_t c1 = 1; c1 <= total; ++c1)
            for (uint64_t c2 = c1; c2 <= total; ++c2) {
                std::vector<uint64_t> ends;
                if (c1 < total) ends.push_back(c1);
                if (c2 > c1 && c2 < total) ends.push_back(c2);
                ends.push_back(total);
                if (c2 == c1 && c1 < total) continue;  // counted once, as (c1, total)
                CheckPlan(a, moe_mc2::MakeGeom(a, ends, m), rng,
                          "shard " + std::to_string(shard) + " ends " + std::to_string(c1) + "," + std::to_string(c2));
                ++count;
            }
        EXPECT_EQ(count, 1 + 14 + 91);  // one tile, two tiles (14 cuts), three tiles (91 cut pairs)
        if (HasFatalFailure()) return;
    }
}

TEST(HostTwin, SharedValidVectors)
{
    std::mt19937_64 rng(99);
    auto j = LoadVectors("forward_valid.json");
    int run = 0;
    for (const auto &c : j.at("cases")) {
        Args a = ArgsFromCase(c);
        if (a.x[2] > 64 || a.weight[2] > 64) continue;
        ASSERT_TRUE(moe_mc2::Validate(a, true).ok());
        CheckPlan(a, moe_mc2::PlanTiles(a, moe_mc2::Machine{}).g, rng, c.at("name").get<std::string>());
        ++run;
    }
    EXPECT_GE(run, 30);
}
