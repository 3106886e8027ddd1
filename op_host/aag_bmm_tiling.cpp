/*
 * Host tiling of AlltoAllAllGatherBatchMatMul: the CANN adapter. Every
 * decision (rules, tile plan, tiling key, block dim, workspace, UB split,
 * the HCCL and Matmul problems) comes from the portable core
 * (op_host/core/aag_bmm_tiling_core.*), which the CPU model of the kernel runs
 * too; this file only reads the TilingContext and the platform, asks CANN's
 * tiling libraries for the blobs only they can make (the HCCL Mc2 tiling and
 * the Matmul TCubeTilings of one unit) and writes the results back. Compiles
 * only with CANN (checked against the open-source headers by
 * scripts/cpp.sh cann-check, docs/cann_headers.md).
 */
#include <string>

#include "register/op_def_registry.h"
#include "register/tilingdata_base.h"
#include "tiling/platform/platform_ascendc.h"
#include "tiling/tiling_api.h"
#include "log/log.h"

#include "core/aag_bmm_planner.h"
#include "core/aag_bmm_rules.h"
#include "core/aag_bmm_tiling_core.h"
#include "aag_bmm_gert_glue.h"
#include "../op_kernel/aag_bmm_tiling_data.h"

namespace optiling {

namespace {

using namespace moe_mc2_glue;

matmul_tiling::DataType MmType(moe_mc2::DType d)
{
    switch (d) {
        case moe_mc2::DType::kBFloat16: return matmul_tiling::DataType::DT_BFLOAT16;
        case moe_mc2::DType::kFloat32: return matmul_tiling::DataType::DT_FLOAT;
        default: return matmul_tiling::DataType::DT_FLOAT16;
    }
}

/* the single-core tiling of one unit: (M x K) * (K x N) -> C (x's dtype or fp32), bias when the
 * matmul adds it; the kernel sets the shapes of every call itself (SetOrgShape / SetSingleShape) */
bool UnitTiling(const platform_ascendc::PlatformAscendC &platform, const moe_mc2::CubeProblem &cube,
                matmul_tiling::DataType cType, AscendC::tiling::TCubeTiling &out)
{
    matmul_tiling::MatmulApiTiling mm(platform);
    mm.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, MmType(cube.inType), false);
    mm.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, MmType(cube.inType), cube.transposeB);
    mm.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, cType);
    mm.SetBias(cube.bias);
    if (cube.bias) {
        mm.SetBiasType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, MmType(cube.biasType));
    }
    mm.SetShape(cube.M, cube.N, cube.K);
    mm.SetOrgShape(cube.M, cube.N, cube.K);
    mm.SetBufferSpace(-1, -1, -1);
    return mm.GetTiling(out) != -1;
}

bool ReadArgs(gert::TilingContext *ctx, moe_mc2::Args &a)
{
    const gert::StorageShape *x = ctx->GetInputShape(kX);
    const gert::StorageShape *w = ctx->GetInputShape(kWeight);
    const gert::StorageShape *b = ctx->GetOptionalInputShape(kBias);
    const gert::RuntimeAttrs *attrs = ctx->GetAttrs();
    if (x == nullptr || w == nullptr || attrs == nullptr) {
        return false;
    }
    a.x = Dims(x->GetStorageShape());
    a.weight = Dims(w->GetStorageShape());
    a.hasBias = (b != nullptr && ctx->GetOptionalInputTensor(kBias) != nullptr);
    if (a.hasBias) {
        a.bias = Dims(b->GetStorageShape());
        a.biasDtype = FromGe(ctx->GetOptionalInputDesc(kBias)->GetDataType());
    }
    a.xDtype = FromGe(ctx->GetInputDesc(kX)->GetDataType());
    a.weightDtype = FromGe(ctx->GetInputDesc(kWeight)->GetDataType());
    ReadAttrs(*attrs, a);
    return true;
}

}  // namespace

ge::graphStatus AagBmmTilingFunc(gert::TilingContext *ctx)
{
    const char *node = ctx->GetNodeName();
    moe_mc2::Args a;
    if (!ReadArgs(ctx, a)) {
        OP_LOGE(node, "missing input shape or attributes");
        return ge::GRAPH_FAILED;
    }
    auto platform = platform_ascendc::PlatformAscendC(ctx->GetPlatformInfo());
    moe_mc2::PlatformInfo pi;
    pi.aicNum = platform.GetCoreNumAic();
    pi.aivNum = platform.GetCoreNumAiv();
    platform.GetCoreMemSize(platform_ascendc::CoreMemType::UB, pi.ubBytes);
    pi.libApiWorkspaceBytes = platform.GetLibApiWorkSpaceSize();

    // 1. rules, plan, key, workspace, UB split: the portable core
    moe_mc2::KernelTiling kt;
    moe_mc2::RuleError err = moe_mc2::MakeKernelTiling(a, pi, kt);
    if (!err.ok()) {
        OP_LOGE(node, "%s (%s)", err.message.c_str(), err.error.c_str());
        return ge::GRAPH_FAILED;
    }
    OP_LOGI(node, "plan: %s; predicted makespan %.1fus, bound %.1fus (cost model, not a measurement)",
            kt.plan.pred.tiling.c_str(), kt.plan.pred.makespan * 1e6, kt.plan.pred.bound * 1e6);

    // 2. the tiling struct
    AagBmmTilingData *td = ctx->GetTilingData<AagBmmTilingData>();
    if (td == nullptr) {
        return ge::GRAPH_FAILED;
    }
    td->geom = kt.plan.g;
    td->userWorkspaceBytes = kt.userWorkspaceBytes;
    td->aivNum = kt.aivNum;
    td->ubBytes = kt.ubBytes;
    td->copyUbBytes = kt.copyUbBytes;

    // 3. HCCL blobs: one init blob, AlltoAllV on group_ep, AllGather on group_tp
    AscendC::Mc2CcTilingConfig cc(kt.alltoall.group, kt.alltoall.opType, kt.alltoall.algConfig);
    cc.GetTiling(td->mc2InitTiling);
    cc.GetTiling(td->alltoallCcTiling);
    cc.SetGroupName(kt.allgather.group);
    cc.SetOpType(kt.allgather.opType);
    cc.SetAlgConfig(kt.allgather.algConfig);
    cc.GetTiling(td->allgatherCcTiling);

    // 4. Matmul blobs of one unit: C in x's dtype (y1 written by the matmul) and C in fp32 (the ring)
    if (!UnitTiling(platform, kt.cube, MmType(kt.cube.inType), td->mmTiling) ||
        !UnitTiling(platform, kt.cube, matmul_tiling::DataType::DT_FLOAT, td->mmRingTiling)) {
        OP_LOGE(node, "matmul tiling failed for %d x %d x %d", kt.cube.M, kt.cube.N, kt.cube.K);
        return ge::GRAPH_FAILED;
    }

    // 5. key, cores, workspace
    ctx->SetTilingKey(kt.tilingKey);
    ctx->SetBlockDim(kt.blockDim);
    size_t *ws = ctx->GetWorkspaceSizes(1);
    if (ws == nullptr) {
        return ge::GRAPH_FAILED;
    }
    ws[0] = static_cast<size_t>(kt.workspaceBytes);
    return ge::GRAPH_SUCCESS;
}

}  // namespace optiling
