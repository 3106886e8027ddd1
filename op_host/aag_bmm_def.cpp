/*
 * OpDef of AlltoAllAllGatherBatchMatMul (CANN custom operator registration).
 * Names, order and defaults must match op_proto/aag_bmm_proto.h, docs/contract.md §9 and
 * python/moe_mc2/contract/names.py, and every field CANN's built-in OpDef of
 * this type declares (the package installs in its place: inputs, optional
 * outputs, attributes and defaults, dtype columns, contiguity, the AICore
 * config); tests/test_conformance.py holds the comparison. One builder call
 * per line for the conformance test. Compiles only with CANN.
 */
#include "register/op_def_registry.h"

namespace optiling {
ge::graphStatus AagBmmTilingFunc(gert::TilingContext *context);
}  // namespace optiling

namespace ops {

class AlltoAllAllGatherBatchMatMul : public OpDef {
public:
    explicit AlltoAllAllGatherBatchMatMul(const char *name) : OpDef(name)
    {
        // CANN's built-in OpDef of this type, column for column: (x, weight, bias) =
        // (fp16, fp16, fp16), (bf16, bf16, fp32), (bf16, bf16, bf16). The third column is
        // declared for parity (the generated aclnn and the binary list match the built-in);
        // the rules reject a bf16 bias (bias.dtype), as CANN's aclnn documentation does.
        this->Input("x")
            .ParamType(REQUIRED)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .AutoContiguous();
        this->Input("weight")
            .ParamType(REQUIRED)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .AutoContiguous();  // a transposed weight comes as its stored tensor + transpose_weight
        this->Input("bias")
            .ParamType(OPTIONAL)
            .DataType({ge::DT_FLOAT16, ge::DT_FLOAT, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .AutoContiguous();
        this->Output("y1")
            .ParamType(REQUIRED)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND});
        this->Output("y2")
            .ParamType(OPTIONAL)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND});
        this->Output("y3")
            .ParamType(OPTIONAL)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16, ge::DT_BF16})
            .Format({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND, ge::FORMAT_ND, ge::FORMAT_ND});
        this->Attr("group_ep").AttrType(REQUIRED).String();
        this->Attr("group_tp").AttrType(REQUIRED).String();
        this->Attr("ep_world_size").AttrType(REQUIRED).Int();
        this->Attr("tp_world_size").AttrType(REQUIRED).Int();
        this->Attr("x_shard_type").AttrType(OPTIONAL).Int(0);
        this->Attr("act_type").AttrType(OPTIONAL).Int(0);
        this->Attr("transpose_weight").AttrType(OPTIONAL).Bool(false);
        this->Attr("output_y2_flag").AttrType(OPTIONAL).Bool(false);
        this->Attr("output_y3_flag").AttrType(OPTIONAL).Bool(false);

        OpAICoreConfig aicoreConfig;
        aicoreConfig.DynamicCompileStaticFlag(true)
            .DynamicFormatFlag(true)
            .DynamicRankSupportFlag(true)
            .DynamicShapeSupportFlag(true)
            .NeedCheckSupportFlag(false)
            .PrecisionReduceFlag(true)
            .ExtendCfgInfo("aclnnSupport.value", "support_aclnn")
            .ExtendCfgInfo("jitCompile.flag", "static_false")  // binary kernels (ENABLE_BINARY_PACKAGE)
            .ExtendCfgInfo("multiKernelSupportDynamicGraph.value", "multi_kernel");
        this->AICore().SetTiling(optiling::AagBmmTilingFunc);
        this->AICore().AddConfig("ascend910_93", aicoreConfig);
        this->MC2().HcclGroup({"group_ep", "group_tp"});
    }
};

OP_ADD(AlltoAllAllGatherBatchMatMul);

}  // namespace ops
