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
    // the kernel's TBuf is 3/4 of UB; the epilogue's five fp32 rows and the copy buffer fit in it
    const uint32_t tbuf = KernelUbBufferBytes(kt.ubBytes);
    EXPECT_EQ(tbuf % 32U, 0U);
    EXPECT_LE(5U * kt.epiColChunk * 4U, tbuf);
    EXPECT_EQ(kt.epiColChunk % 64U, 0U);
    EXPECT_GT(kt.epiColChunk, 0U);
    EXPECT_LE(kt.copyUbBytes, tbuf);
    EXPECT_EQ(kt.copyUbBytes % 32U, 0U);
    // the matmul the Cube tiling is made for: the largest run, K = H, N = M/tp
    EXPECT_EQ(kt.cube.M, static_cast<int32_t>(aag::MaxRunRows(kt.plan.g)));
    EXPECT_EQ(kt.cube.N, 4096);
    EXPECT_EQ(kt.cube.K, 1024);
    EXPECT_EQ(kt.cube.cores, 24U);
    EXPECT_EQ(kt.alltoall.group, "ep");
    EXPECT_EQ(kt.alltoall.opType, kHcclCmdAlltoAllV);
    EXPECT_EQ(kt.allgather.group, "tp");
    EXPECT_EQ(kt.allgather.opType, kHcclCmdAllGather);
}

TEST(TilingCore, PlanIsThePlannersPlan)
{
    KernelTiling kt;
    ASSERT_TRUE(MakeKernelTiling(Call(0), A3Die(), kt).ok());
    Plan p = PlanTiles(Call(0));
    EXPECT_EQ(kt.plan.g.eTile, p.g.eTile);
    EXPECT_EQ(kt.plan.g.cTile, p.g.cTile);
    EXPECT_DOUBLE_EQ(kt.plan.makespan, p.makespan);
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
    EXPECT_EQ(kt.plan.g.eTile, 1U);
    EXPECT_EQ(kt.plan.g.cTile, 128U);
    EXPECT_EQ(aag::NumTiles(kt.plan.g), 1U + 4U * 4U);
    EXPECT_EQ(MakeKernelTilingWithTiles(Call(), A3Die(), 2, 128, kt).rule, "tiling.shape");  // not contiguous
    EXPECT_EQ(MakeKernelTilingWithTiles(Call(), A3Die(), 1, 1, kt).rule, "tiling.shape");    // > 16 tiles
}
