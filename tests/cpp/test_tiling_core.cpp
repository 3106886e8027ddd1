// The portable tiling core (op_host/core/aag_bmm_tiling_core.*): what the CANN adapter and the CPU
// model of the kernel both take from it.
#include <gtest/gtest.h>

#include "aag_bmm_planner.h"
#include "aag_bmm_rules.h"
#include "aag_bmm_tiling_core.h"

using namespace moe_mc2;

namespace {

PlatformInfo A3Die()
{
    PlatformInfo p;
    p.aicNum = 24;
    p.aivNum = 48;
    p.ubBytes = 192 * 1024;
    p.libApiWorkspaceBytes = 16 * 1024 * 1024;
    return p;
}

Args Call(int64_t shard = 1)
{
    Args a = ArgsFor(4, 2, shard, 16, 1024, 1024, 8192, DType::kFloat16);
    a.actType = 1;
    a.hasBias = true;
    a.bias = {4, 1, 4096};
    a.biasDtype = DType::kFloat16;
    a.y2Flag = true;
    return a;
}

}  // namespace

TEST(TilingCore, FillsWhatTheKernelReads)
{
    KernelTiling kt;
    ASSERT_TRUE(MakeKernelTiling(Call(), A3Die(), kt).ok());
    EXPECT_EQ(kt.tilingKey, TilingKeyOf(Call()));
    EXPECT_EQ(kt.blockDim, 24U);
    EXPECT_EQ(kt.aivNum, 48U);
    EXPECT_EQ(kt.userWorkspaceBytes, WorkspaceBytes(kt.plan.g, 2));
    EXPECT_EQ(kt.workspaceBytes, 16ULL * 1024 * 1024 + kt.userWorkspaceBytes);
    // the kernel's buffers take at most 3/4 of UB (the rest is the activation APIs' scratch)
    EXPECT_LE(kt.ubUsedBytes, KernelUbBufferBytes(kt.ubBytes));
    EXPECT_EQ(kt.ubUsedBytes, KernelUbUse(kt.plan.g, 2, 2, kt.ubBytes));
    EXPECT_GT(kt.plan.g.epiRows, 0U);  // GELU: the ring path
    EXPECT_EQ(kt.plan.g.ring, 1U);
    EXPECT_EQ(kt.copyUbBytes % 32U, 0U);
    EXPECT_GT(kt.copyUbBytes, 0U);
    // the matmul the Cube tilings are made for: one unit, K = H
    EXPECT_EQ(kt.cube.M, static_cast<int32_t>(kt.plan.g.unitM));
    EXPECT_EQ(kt.cube.N, static_cast<int32_t>(kt.plan.g.unitN));
    EXPECT_EQ(kt.cube.K, 1024);
    EXPECT_TRUE(kt.cube.bias);
    EXPECT_EQ(kt.cube.cores, 24U);
    EXPECT_EQ(kt.plan.g.aivNum, 48U);
    EXPECT_EQ(kt.alltoall.group, "ep");
    EXPECT_EQ(kt.alltoall.opType, kHcclCmdAlltoAllV);
    EXPECT_EQ(kt.allgather.group, "tp");
    EXPECT_EQ(kt.allgather.opType, kHcclCmdAllGather);
}

TEST(TilingCore, PlanIsThePlannersPlan)
{
    KernelTiling kt;
    ASSERT_TRUE(MakeKernelTiling(Call(0), A3Die(), kt).ok());
    Plan p = PlanTiles(Call(0), MachineOf(A3Die()));
    ASSERT_EQ(kt.plan.g.nTiles, p.g.nTiles);
    for (uint32_t k = 0; k < p.g.nTiles; ++k) EXPECT_EQ(kt.plan.g.tileEnd[k], p.g.tileEnd[k]);
    EXPECT_DOUBLE_EQ(kt.plan.pred.makespan, p.pred.makespan);
}

TEST(TilingCore, KeptPlansAreEachCallsOwn)
{
    // the tiling keeps recent plans: calls that differ in any one input the plan depends on, asked in
    // turn and again, must each get the planner's plan for exactly that call
    std::vector<std::pair<Args, PlatformInfo>> calls;
    for (int variant = 0; variant < 9; ++variant) {
        Args a = Call(variant == 1 ? 0 : 1);
        PlatformInfo p = A3Die();
        if (variant == 2) a.actType = 0;
        if (variant == 3) a.y2Flag = false;
        if (variant == 4) a.y3Flag = true;
        if (variant == 5) a.hasBias = false, a.bias.clear();
        if (variant == 6) a = ArgsFor(4, 2, 1, 16, 512, 1024, 8192, DType::kFloat16);
        if (variant == 7) p.aicNum = 20, p.aivNum = 40;
        if (variant == 8) a.transposeWeight = true;
        calls.emplace_back(a, p);
    }
    for (int round = 0; round < 2; ++round) {
        for (size_t n = 0; n < calls.size(); ++n) {
            KernelTiling kt;
            Args a = calls[n].first;
            a.groupEp = "ep" + std::to_string(round);  // names never change a plan
            const RuleError err = MakeKernelTiling(a, calls[n].second, kt);
            ASSERT_TRUE(err.ok()) << n << ": " << err.message;
            const Plan want = PlanTiles(a, MachineOf(calls[n].second));
            ASSERT_EQ(kt.plan.g.nTiles, want.g.nTiles) << n;
            for (uint32_t k = 0; k < want.g.nTiles; ++k) EXPECT_EQ(kt.plan.g.tileEnd[k], want.g.tileEnd[k]) << n;
            EXPECT_EQ(kt.plan.g.ownAhead, want.g.ownAhead) << n;
            EXPECT_EQ(kt.plan.g.splitPeer, want.g.splitPeer) << n;
            EXPECT_EQ(kt.plan.g.peerAhead, want.g.peerAhead) << n;
            EXPECT_EQ(kt.plan.g.unitM, want.g.unitM) << n;
            EXPECT_EQ(kt.plan.g.act, want.g.act) << n;
            EXPECT_EQ(kt.plan.g.y3Out, want.g.y3Out) << n;
            EXPECT_EQ(kt.plan.g.transposeWeight, want.g.transposeWeight) << n;
            EXPECT_EQ(kt.plan.g.aivNum, want.g.aivNum) << n;
            EXPECT_DOUBLE_EQ(kt.plan.pred.makespan, want.pred.makespan) << n;
        }
    }
}

TEST(TilingCore, UbFitsForEveryPath)
{
    for (int64_t act : {0, 1, 2}) {
        for (bool y2 : {false, true}) {
            Args a = Call(act == 2 ? 0 : 1);
            a.actType = act;
            a.y2Flag = y2;
            a.y3Flag = true;
            KernelTiling kt;
            ASSERT_TRUE(MakeKernelTiling(a, A3Die(), kt).ok());
            EXPECT_LE(kt.ubUsedBytes, KernelUbBufferBytes(kt.ubBytes)) << act << " " << y2;
        }
    }
}

TEST(TilingCore, RulesComeFirst)
{
    Args a = Call();
    a.x[0] = 15;  // E not a multiple of ep
    KernelTiling kt;
    RuleError e = MakeKernelTiling(a, A3Die(), kt);
    EXPECT_FALSE(e.ok());
    EXPECT_EQ(e.rule, Validate(a).rule);
}

TEST(TilingCore, PlatformMustRunMixOneToTwo)
{
    KernelTiling kt;
    PlatformInfo p = A3Die();
    p.aivNum = 24;
    RuleError e = MakeKernelTiling(Call(), p, kt);
    EXPECT_EQ(e.rule, "platform");
    p = A3Die();
    p.ubBytes = 1024;
    EXPECT_EQ(MakeKernelTiling(Call(), p, kt).rule, "platform");
}

TEST(TilingCore, ForcedTilesAreCheckedAndUsed)
{
    KernelTiling kt;
    ASSERT_TRUE(MakeKernelTilingWithTiles(Call(), A3Die(), 1, 128, kt).ok());
    EXPECT_EQ(kt.plan.g.nTiles, 16U);  // 4 experts x 4 row chunks
    EXPECT_EQ(kt.plan.g.tileEnd[0], 128U);
    EXPECT_EQ(MakeKernelTilingWithTiles(Call(), A3Die(), 2, 128, kt).rule, "tiling.shape");  // eTile > 1 needs full rows
    EXPECT_EQ(MakeKernelTilingWithTiles(Call(), A3Die(), 1, 1, kt).rule, "tiling.shape");    // > 16 tiles
    ASSERT_TRUE(MakeKernelTilingWithEnds(Call(), A3Die(), {100, 700, 2048}, kt).ok());       // tiles may span experts
    EXPECT_EQ(kt.plan.g.nTiles, 3U);
    EXPECT_EQ(MakeKernelTilingWithEnds(Call(), A3Die(), {100, 100, 2048}, kt).rule, "tiling.shape");
    EXPECT_EQ(MakeKernelTilingWithEnds(Call(), A3Die(), {100, 2047}, kt).rule, "tiling.shape");
}
