/*
 * Shape and dtype inference of AlltoAllAllGatherBatchMatMul for graph mode
 * (gert runtime-2 registration). Glue only: the rules and the shapes come
 * from the portable core (op_host/core) through aag_bmm_infer_dims.h, which
 * also handles unknown dims (-1) and unknown rank (-2) of dynamic-shape
 * graphs. Compiles only with CANN.
 */
#include <string>
#include <vector>

#include "register/op_impl_registry.h"
#include "graph/utils/type_utils.h"
#include "core/aag_bmm_rules.h"
#include "aag_bmm_gert_glue.h"
#include "aag_bmm_infer_dims.h"

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
    if (!ReadAttrs(*attrs, a)) {
        return ge::GRAPH_FAILED;
    }
    moe_mc2_infer::Inferred r = moe_mc2_infer::InferDims(a);
    if (!r.ok) {
        return ge::GRAPH_FAILED;
    }
    SetDims(y1, r.shapes.y1);
    SetDims(y2, r.shapes.y2);
    SetDims(y3, r.shapes.y3);
    return ge::GRAPH_SUCCESS;
}

// The core's dtype rules (x fp16/bf16, weight == x, bias fp16 for fp16 x and fp32 for bf16 x)
// on a call whose shapes are valid, so that only a dtype can break a rule.
ge::graphStatus InferDataTypeAagBmm(gert::InferDataTypeContext *ctx)
{
    const ge::DataType x = ctx->GetInputDataType(kX);
    const ge::DataType bias = ctx->GetOptionalInputDataType(kBias);
    moe_mc2::Args a = moe_mc2::ArgsFor(2, 2, 1, 2, 2, 1, 2);
    a.xDtype = FromGe(x);
    a.weightDtype = FromGe(ctx->GetInputDataType(kWeight));
    a.hasBias = bias != ge::DT_UNDEFINED;
    if (a.hasBias) {
        a.bias = {a.weight[0], a.weight[2]};
        a.biasDtype = FromGe(bias);
    }
    if (!moe_mc2::Validate(a, false).ok()) {
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
