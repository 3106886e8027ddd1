/*
 * Shape and dtype inference of AlltoAllAllGatherBatchMatMul for graph mode
 * (gert runtime-2 registration). Glue only: the rules and the shapes come
 * from the portable core (op_host/core). Compiles only with CANN.
 */
#include <string>

#include "register/op_impl_registry.h"
#include "graph/utils/type_utils.h"
#include "core/aag_bmm_rules.h"
#include "aag_bmm_gert_glue.h"

namespace {

using namespace moe_mc2_glue;

void SetDims(gert::Shape *s, const std::vector<int64_t> &d)
{
    s->SetDimNum(d.size());
    for (size_t k = 0; k < d.size(); ++k) {
        s->SetDim(k, d[k]);
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
    ReadAttrs(*attrs, a);
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
