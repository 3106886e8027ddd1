/*
 * Shape and dtype inference of AlltoAllAllGatherBatchMatMul for graph mode
 * (gert runtime-2 registration). Glue only: the rules and the shapes come
 * from the portable core (op_host/core). Compiles only with CANN.
 */
#include <string>

#include "register/op_impl_registry.h"
#include "graph/utils/type_utils.h"
#include "core/aag_bmm_rules.h"

namespace {

constexpr size_t kX = 0;
constexpr size_t kWeight = 1;
constexpr size_t kBias = 2;
constexpr size_t kY1 = 0;
constexpr size_t kY2 = 1;
constexpr size_t kY3 = 2;
// attribute indices: order of REG_OP / OpDef
constexpr size_t kAttrGroupEp = 0;
constexpr size_t kAttrGroupTp = 1;
constexpr size_t kAttrEp = 2;
constexpr size_t kAttrTp = 3;
constexpr size_t kAttrShard = 4;
constexpr size_t kAttrAct = 5;
constexpr size_t kAttrTransposeW = 6;
constexpr size_t kAttrY2 = 7;
constexpr size_t kAttrY3 = 8;

std::vector<int64_t> Dims(const gert::Shape &s)
{
    std::vector<int64_t> d(s.GetDimNum());
    for (size_t k = 0; k < d.size(); ++k) {
        d[k] = s.GetDim(k);
    }
    return d;
}

void SetDims(gert::Shape *s, const std::vector<int64_t> &d)
{
    s->SetDimNum(d.size());
    for (size_t k = 0; k < d.size(); ++k) {
        s->SetDim(k, d[k]);
    }
}

moe_mc2::DType FromGe(ge::DataType t)
{
    switch (t) {
        case ge::DT_FLOAT16: return moe_mc2::DType::kFloat16;
        case ge::DT_BF16: return moe_mc2::DType::kBFloat16;
        case ge::DT_FLOAT: return moe_mc2::DType::kFloat32;
        default: return moe_mc2::DType::kOther;
    }
}

ge::graphStatus InferShapeAagBmm(gert::InferShapeContext *ctx)
{
    const gert::Shape *x = ctx->GetInputShape(kX);
    const gert::Shape *w = ctx->GetInputShape(kWeight);
    const gert::Shape *b = ctx->GetOptionalInputShape(kBias);
    const gert::RuntimeAttrs *attrs = ctx->GetAttrs();
    gert::Shape *y1 = ctx->GetOutputShape(kY1);
    gert::Shape *y2 = ctx->GetOutputShape(kY2);
    gert::Shape *y3 = ctx->GetOutputShape(kY3);
    if (x == nullptr || w == nullptr || attrs == nullptr || y1 == nullptr || y2 == nullptr || y3 == nullptr) {
        return ge::GRAPH_FAILED;
    }
    moe_mc2::Args a;
    a.x = Dims(*x);
    a.weight = Dims(*w);
    a.hasBias = (b != nullptr && b->GetDimNum() != 0U);
    if (a.hasBias) {
        a.bias = Dims(*b);
    }
    const char *ge_ = attrs->GetStr(kAttrGroupEp);
    const char *gt_ = attrs->GetStr(kAttrGroupTp);
    a.groupEp = ge_ ? ge_ : "";
    a.groupTp = gt_ ? gt_ : "";
    a.ep = *attrs->GetInt(kAttrEp);
    a.tp = *attrs->GetInt(kAttrTp);
    a.shardType = *attrs->GetInt(kAttrShard);
    a.actType = *attrs->GetInt(kAttrAct);
    a.transposeWeight = *attrs->GetBool(kAttrTransposeW);
    a.y2Flag = *attrs->GetBool(kAttrY2);
    a.y3Flag = *attrs->GetBool(kAttrY3);
    if (a.transposeWeight && a.weight.size() == 3U) {
        std::swap(a.weight[1], a.weight[2]);  // stored (El, N, H) -> logical (El, H, N)
    }
    // dtypes are checked by InferDataType / tiling; shapes only here
    a.xDtype = a.weightDtype = moe_mc2::DType::kFloat16;
    a.biasDtype = moe_mc2::DType::kFloat16;
    moe_mc2::RuleError err = moe_mc2::Validate(a, false);
    if (!err.ok() && err.error != "TypeError") {
        return ge::GRAPH_FAILED;
    }
    moe_mc2::OutShapes o = moe_mc2::InferShapes(a);
    SetDims(y1, o.y1);
    SetDims(y2, o.y2);
    SetDims(y3, o.y3);
    return ge::GRAPH_SUCCESS;
}

ge::graphStatus InferDataTypeAagBmm(gert::InferDataTypeContext *ctx)
{
    ge::DataType x = ctx->GetInputDataType(kX);
    if (FromGe(x) != moe_mc2::DType::kFloat16 && FromGe(x) != moe_mc2::DType::kBFloat16) {
        return ge::GRAPH_FAILED;
    }
    ctx->SetOutputDataType(kY1, x);
    ctx->SetOutputDataType(kY2, x);
    ctx->SetOutputDataType(kY3, x);
    return ge::GRAPH_SUCCESS;
}

}  // namespace

namespace ops {
IMPL_OP_INFERSHAPE(AlltoAllAllGatherBatchMatMul)
    .InferShape(InferShapeAagBmm)
    .InferDataType(InferDataTypeAagBmm);
}  // namespace ops
