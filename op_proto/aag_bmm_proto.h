/*
 * GE prototype of AlltoAllAllGatherBatchMatMul (graph mode, torchair lowering).
 *
 * Names, order and defaults are the contract's (docs/contract.md §9, names shared with GE) and
 * must stay identical to op_host/aag_bmm_def.cpp (OpDef), to
 * python/moe_mc2/contract/names.py and to CANN's built-in prototype of the
 * same name (this package installs in its place; docs/graph_mode.md lists the
 * comparison). One macro per line: a conformance test parses this file with
 * regular expressions.
 *
 * Per rank (i, t) of an ep x tp world, El = E / ep, N = M / tp:
 *   x_shard_type 1: x (E, C/tp, H);  x_shard_type 0: x (E, C, H/tp)
 *   weight (El, H, N), or (El, N, H) stored when transpose_weight is true
 *   bias   (El, N) or (El, 1, N): float16 for float16 x, float32 for bfloat16 x
 *          (DT_BF16 is listed as CANN's prototype lists it; the rules reject it)
 *   y2 = AllGather_tp(AlltoAll_ep(x))   (El, ep*C, H)   real only if output_y2_flag
 *   y3 = y2 @ weight + bias             (El, ep*C, N)   real only if output_y3_flag and act_type != 0
 *   y1 = act(y3)                        (El, ep*C, N)
 *   act_type: 0 None, 1 GELU (tanh form), 2 Silu, 3 Relu, 4 FastGELU
 *   ep_world_size, tp_world_size in {2, 4, 8, 16}; group_ep != group_tp,
 *   E in [2, 2048] and a multiple of ep; H and N in [1, 65535]; C > 0.
 * An output that is not produced has shape [0, 0, 0]; GE prototypes have no
 * optional outputs, the OpDef declares y2 and y3 OPTIONAL (aclnn: nullable).
 * Shapes may hold unknown dims (-1) or be of unknown rank (-2).
 */
#ifndef MOE_MC2_OP_PROTO_AAG_BMM_PROTO_H
#define MOE_MC2_OP_PROTO_AAG_BMM_PROTO_H

#include "graph/operator_reg.h"

namespace ge {

REG_OP(AlltoAllAllGatherBatchMatMul)
    .INPUT(x, TensorType({DT_FLOAT16, DT_BF16}))
    .INPUT(weight, TensorType({DT_FLOAT16, DT_BF16}))
    .OPTIONAL_INPUT(bias, TensorType({DT_FLOAT16, DT_FLOAT, DT_BF16}))
    .OUTPUT(y1, TensorType({DT_FLOAT16, DT_BF16}))
    .OUTPUT(y2, TensorType({DT_FLOAT16, DT_BF16}))
    .OUTPUT(y3, TensorType({DT_FLOAT16, DT_BF16}))
    .REQUIRED_ATTR(group_ep, String)
    .REQUIRED_ATTR(group_tp, String)
    .REQUIRED_ATTR(ep_world_size, Int)
    .REQUIRED_ATTR(tp_world_size, Int)
    .ATTR(x_shard_type, Int, 0)
    .ATTR(act_type, Int, 0)
    .ATTR(transpose_weight, Bool, false)
    .ATTR(output_y2_flag, Bool, false)
    .ATTR(output_y3_flag, Bool, false)
    .OP_END_FACTORY_REG(AlltoAllAllGatherBatchMatMul)

}  // namespace ge

#endif  // MOE_MC2_OP_PROTO_AAG_BMM_PROTO_H
