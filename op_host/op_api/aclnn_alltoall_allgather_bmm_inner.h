/*
 * aclnn_alltoall_allgather_bmm_inner.h: the API opbuild generates from op_host/aag_bmm_def.cpp
 * when it runs with OPS_PROJECT_NAME=aclnnInner (scripts/cpp.sh package arranges that), as the
 * public wrapper (aclnn_alltoall_allgather_bmm.cpp) calls it. Not installed: callers use the
 * public API.
 *
 * opbuild's rules for the first stage (its own generated-code goldens): the OpDef's inputs as
 * `const aclTensor *`, then every attribute in OpDef order (String -> `char *`, Int -> int64_t,
 * Bool -> bool), then the outputs as `const aclTensor *` (an OPTIONAL one may be null), then
 * workspaceSize and executor. tests/test_aclnn_wrapper.py derives this list from the OpDef and
 * holds InnerGetWorkspaceSizeFn to it.
 *
 * In the package build the generated header itself is included as well
 * (MOE_MC2_ACLNN_INNER_HEADER, set by op_api/opapi.cmake): the declaration then comes from
 * opbuild and a static_assert in the wrapper compares its argument list with this one (pointer
 * constness aside, which does not change the C ABI), so a difference fails the build.
 */
#ifndef MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_INNER_H_
#define MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_INNER_H_

#include <stdint.h>

#include "aclnn/aclnn_base.h"

namespace moe_mc2_opapi {

// (x, weight, bias, group_ep, group_tp, ep_world_size, tp_world_size, x_shard_type, act_type,
//  transpose_weight, output_y2_flag, output_y3_flag, y1, y2, y3, workspaceSize, executor)
using InnerGetWorkspaceSizeFn = aclnnStatus (*)(const aclTensor *, const aclTensor *, const aclTensor *, char *,
                                                char *, int64_t, int64_t, int64_t, int64_t, bool, bool, bool,
                                                const aclTensor *, const aclTensor *, const aclTensor *,
                                                uint64_t *, aclOpExecutor **);
using InnerRunFn = aclnnStatus (*)(void *, uint64_t, aclOpExecutor *, aclrtStream);

}  // namespace moe_mc2_opapi

#ifndef MOE_MC2_ACLNN_INNER_HEADER
extern "C" {
aclnnStatus aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional, char *groupEp, char *groupTp,
    int64_t epWorldSize, int64_t tpWorldSize, int64_t xShardTypeOptional, int64_t actTypeOptional,
    bool transposeWeightOptional, bool outputY2FlagOptional, bool outputY3FlagOptional, const aclTensor *y1Out,
    const aclTensor *y2OutOptional, const aclTensor *y3OutOptional, uint64_t *workspaceSize,
    aclOpExecutor **executor);
aclnnStatus aclnnInnerAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                   aclrtStream stream);
}
#endif

#endif  // MOE_MC2_ACLNN_ALLTOALL_ALLGATHER_BMM_INNER_H_
