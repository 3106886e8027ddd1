/*
 * Host tiling of AlltoAllAllGatherBatchMatMul: validate -> plan -> fill the
 * tiling data -> tiling key -> workspace size. All decisions come from the
 * portable core (op_host/core); this file only reads the TilingContext,
 * asks the CANN tiling helpers (HCCL, Matmul, platform) for their blobs and
 * writes the results back. Compiles only with CANN.
 */
#include <string>

#include "register/op_def_registry.h"
#include "register/tilingdata_base.h"
#include "tiling/platform/platform_ascendc.h"
#include "tiling/tiling_api.h"
#include "log/ops_log.h"

#include "core/aag_bmm_planner.h"
#include "core/aag_bmm_rules.h"
#include "aag_bmm_gert_glue.h"
#include "../op_kernel/aag_bmm_tiling_data.h"

namespace optiling {

namespace {

using namespace moe_mc2_glue;

// HcclCMDType values (HCCL high-level API tiling documentation)
constexpr uint32_t kHcclCmdAllGather = 6U;
constexpr uint32_t kHcclCmdAlltoAllV = 8U;

matmul_tiling::DataType MmType(moe_mc2::DType d)
{
    return d == moe_mc2::DType::kBFloat16 ? matmul_tiling::DataType::DT_BFLOAT16
                                          : matmul_tiling::DataType::DT_FLOAT16;
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
    // 1. validate (same rule ids as the Python package)
    moe_mc2::Args a;
    if (!ReadArgs(ctx, a)) {
        OPS_LOG_E(node, "missing input shape or attributes");
        return ge::GRAPH_FAILED;
    }
    moe_mc2::RuleError err = moe_mc2::Validate(a, /*portable=*/false);
    if (!err.ok()) {
        OPS_LOG_E(node, "%s (%s)", err.message.c_str(), err.error.c_str());
        return ge::GRAPH_FAILED;
    }
    // 2. plan
    moe_mc2::Plan plan = moe_mc2::PlanTiles(a);
    const uint32_t elemBytes = moe_mc2::DTypeBytes(a.xDtype);
    OPS_LOG_I(node, "plan eTile=%lu cTile=%lu tiles=%u makespan=%.1fus no-overlap=%.1fus",
              static_cast<unsigned long>(plan.g.eTile), static_cast<unsigned long>(plan.g.cTile),
              aag::NumTiles(plan.g), plan.makespan * 1e6, plan.noOverlap * 1e6);

    // 3. tiling data
    AagBmmTilingData *td = ctx->GetTilingData<AagBmmTilingData>();
    if (td == nullptr) {
        return ge::GRAPH_FAILED;
    }
    auto platform = platform_ascendc::PlatformAscendC(ctx->GetPlatformInfo());
    const uint32_t aicNum = platform.GetCoreNumAic();
    const uint32_t aivNum = platform.GetCoreNumAiv();
    uint64_t ubBytes = 0;
    platform.GetCoreMemSize(platform_ascendc::CoreMemType::UB, ubBytes);

    td->geom = plan.g;
    td->userWorkspaceBytes = moe_mc2::WorkspaceBytes(plan.g, elemBytes);
    td->aivNum = aivNum;
    td->ubBytes = static_cast<uint32_t>(ubBytes);
    td->copyUbBytes = static_cast<uint32_t>(ubBytes / 2U / 32U * 32U);
    td->epiColChunk = static_cast<uint32_t>(ubBytes / 4U * 3U / 5U / sizeof(float) / 64U * 64U);  // acc, bias, act, out, raw bias

    // HCCL: AlltoAllV on group_ep, AllGather on group_tp (algorithm strings: HCCL tiling docs, Atlas A3)
    AscendC::Mc2CcTilingConfig cc(a.groupEp, kHcclCmdAlltoAllV, "AlltoAll=level0:fullmesh;level1:pairwise");
    cc.GetTiling(td->mc2InitTiling);
    cc.GetTiling(td->alltoallCcTiling);
    cc.SetGroupName(a.groupTp);
    cc.SetOpType(kHcclCmdAllGather);
    cc.SetAlgConfig("AllGather=level0:doublering");
    cc.GetTiling(td->allgatherCcTiling);

    // Matmul tiling of the largest run: (MaxRunRows x H) * (H x N) -> fp32
    matmul_tiling::MultiCoreMatmulTiling mm(platform);
    const int32_t rows = static_cast<int32_t>(aag::MaxRunRows(plan.g));
    const int32_t n = static_cast<int32_t>(plan.g.N);
    const int32_t k = static_cast<int32_t>(plan.g.H);
    mm.SetDim(static_cast<int32_t>(aicNum));
    mm.SetAType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, MmType(a.xDtype), false);
    mm.SetBType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, MmType(a.xDtype), a.transposeWeight);
    mm.SetCType(matmul_tiling::TPosition::GM, matmul_tiling::CubeFormat::ND, matmul_tiling::DataType::DT_FLOAT);
    mm.SetBias(false);  // bias is added by the fp32 vector epilogue
    mm.SetShape(rows, n, k);
    mm.SetOrgShape(rows, n, k);
    mm.SetBufferSpace(-1, -1, -1);
    if (mm.GetTiling(td->mmTiling) == -1) {
        OPS_LOG_E(node, "matmul tiling failed for %d x %d x %d", rows, n, k);
        return ge::GRAPH_FAILED;
    }

    // 4. tiling key (shard, transpose_weight, bias, y2, y3) -> 0..31, see aag::TilingKey
    ctx->SetTilingKey(moe_mc2::TilingKeyOf(a));
    ctx->SetBlockDim(platform.CalcTschBlockDim(aivNum, aicNum, aivNum));

    // 5. workspace: the library's system workspace + our regions
    size_t *ws = ctx->GetWorkspaceSizes(1);
    if (ws == nullptr) {
        return ge::GRAPH_FAILED;
    }
    ws[0] = static_cast<size_t>(platform.GetLibApiWorkSpaceSize() + td->userWorkspaceBytes);
    return ge::GRAPH_SUCCESS;
}

}  // namespace optiling
