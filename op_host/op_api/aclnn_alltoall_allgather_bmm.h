/*
 * aclnn_alltoall_allgather_bmm.h: the public aclnn API of AlltoAllAllGatherBatchMatMul in the
 * moe_mc2 OPP package, with the argument list CANN publishes for its built-in op, so that a
 * caller of CANN's aclnnAlltoAllAllGatherBatchMatMul that finds this package's libcust_opapi.so
 * first (torch_npu's op-plugin looks in custom OPP libraries before libopapi.so) passes the
 * arguments it always passed.
 *
 * The function is written by hand (aclnn_alltoall_allgather_bmm.cpp) over the API opbuild
 * generates from op_host/aag_bmm_def.cpp under the inner name (aclnnInner..., see
 * aclnn_alltoall_allgather_bmm_inner.h), which takes three more attributes; the wrapper derives
 * them from its arguments:
 *   transpose_weight  the weight's view is the transpose of a contiguous (E/ep, M/tp, H) tensor
 *                     (unit stride on dim 1, stride H on dim 2, batch stride H*M/tp, and not both
 *                     of the last two dims 1); the inner API then gets that stored (E/ep, M/tp, H)
 *                     layout;
 *   output_y2_flag    y2OutOptional is not null;
 *   output_y3_flag    y3OutOptional is not null (with actType 0 that is an error, as in CANN).
 *
 * This is also the one declaration of the public API in this repository: the moe_mc2 aclnn
 * bridge (python/moe_mc2/integration/csrc/aclnn_decls.h, through a link to this file) takes the
 * type of the entry points it calls, in CANN's library or in this package, from here.
 *
 * Types: from CANN's aclnn/aclnn_base.h, unless the includer has declared aclTensor,
 * aclOpExecutor, aclnnStatus and aclrtStream itself and says so with
 * MOE_MC2_ACLNN_TYPES_DECLARED (only the bridge does, when it is built without CANN's headers).
 */
#ifndef MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_H_
#define MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_H_

#include <stdint.h>

#ifndef MOE_MC2_ACLNN_TYPES_DECLARED
#include "aclnn/aclnn_base.h"
#endif

#if defined(__GNUC__)
#define MOE_MC2_ACLNN_EXPORT __attribute__((visibility("default")))
#else
#define MOE_MC2_ACLNN_EXPORT
#endif

/* What moe_mc2_aclnn_api_version() answers: 1 = the entry points below take CANN's public
 * argument list. (A package built before the wrapper existed exported the generated inner
 * argument list under the public name and has no such function.) */
#define MOE_MC2_ACLNN_API_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/*
 * First stage. Shapes (ep = epWorldSize, tp = tpWorldSize, El = E/ep, N = M/tp):
 *   x              (E, C, H/tp) for xShardType 0, (E, C/tp, H) for xShardType 1; float16 or bfloat16
 *   weight         (El, H, N), contiguous or the transposed view of a contiguous (El, N, H) tensor
 *   biasOptional   null, (El, N) or (El, 1, N); float16 for float16 x, float32 for bfloat16 x
 *   groupEp/Tp     HCCL communicator names, distinct, 1..127 characters
 *   actType        0 None, 1 GELU, 2 Silu, 3 Relu, 4 FastGELU
 *   y1Out          (El, ep*C, N)
 *   y2OutOptional  null, or (El, ep*C, H): the gathered x
 *   y3OutOptional  null, or (El, ep*C, N): the result before the activation (actType != 0)
 * Returns 161001 for a null x / weight / y1Out / group name, 161002 for arguments that break the
 * operator's rules (the same rules its tiling applies, docs/contract.md §5) or outputs
 * of the wrong shape or dtype, else what the generated API returns. The reason is logged through
 * aclAppLog.
 */
MOE_MC2_ACLNN_EXPORT aclnnStatus aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional, const char *groupEp,
    const char *groupTp, int64_t epWorldSize, int64_t tpWorldSize, int64_t xShardType, int64_t actType,
    aclTensor *y1Out, aclTensor *y2OutOptional, aclTensor *y3OutOptional, uint64_t *workspaceSize,
    aclOpExecutor **executor);

/* Second stage: runs the executor of the first stage on `stream`. */
MOE_MC2_ACLNN_EXPORT aclnnStatus aclnnAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize,
                                                                   aclOpExecutor *executor, aclrtStream stream);

/* MOE_MC2_ACLNN_API_VERSION of the library; the moe_mc2 bridge takes a package without it for
 * one built before this wrapper and does not call it. */
MOE_MC2_ACLNN_EXPORT int64_t moe_mc2_aclnn_api_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_H_ */
