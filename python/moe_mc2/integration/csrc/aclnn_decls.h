// aclnn_decls.h — every declaration of CANN's C API that the moe_mc2 aclnn bridge uses, and
// nothing more. This is the one place the bridge states a CANN signature.
//
// Three groups:
//   1. aclDataType / aclFormat / aclrtStream: from <acl/acl_base.h> where it exists (the
//      torch-npu wheel ships it, so does every CANN toolkit); declared here otherwise, with
//      CANN's values (only the unit tests build without it).
//   2. aclTensor / aclOpExecutor / aclnnStatus, and the types of aclCreateTensor and
//      aclDestroyTensor: from <aclnn/acl_meta.h> where it exists (a CANN toolkit's include/,
//      or the open-source opbase headers under $CANN_INCLUDE); the opaque types are declared
//      here otherwise. The function-pointer types below are written once and, whenever the
//      real header is there, checked against it by static_assert.
//   3. The aclnn entry points of the two ops. No header the bridge can count on declares
//      them (they live in op-API libraries and are looked up with dlsym):
//        - aclnnAlltoAllAllGatherBatchMatMul, CANN's public argument list, which CANN's
//          built-in (ops-transformer mc2/, a hand-written wrapper over its generated
//          aclnnInner... function) and the moe_mc2 OPP package (the same, op_host/op_api/)
//          both export: x, weight, bias, the groups, the world sizes, x_shard_type, act_type,
//          y1, y2, y3; no transpose_weight / output flags (a transposed weight is read from its
//          strides, a missing y2 / y3 from a null pointer). Its type is taken from the package's
//          own public header, aclnn_alltoall_allgather_bmm.h (a link to
//          op_host/op_api/aclnn_alltoall_allgather_bmm.h): one declaration for both;
//        - CANN's built-in aclnnBatchMatMulReduceScatterAlltoAll (the package has no adjoint),
//          written here after CANN's published declaration.
//      tests/test_npu_bridge_compile.py checks both against the OpDef / the adjoint's GE
//      prototype (order and C types) and, optionally, against CANN's published headers.
#pragma once

#include <cstdint>
#include <type_traits>

#if __has_include(<acl/acl_base.h>)
#include <acl/acl_base.h>
#define MOE_MC2_ACL_BASE_FROM_CANN 1
#else
extern "C" {
typedef void *aclrtStream;
typedef enum { ACL_FLOAT = 0, ACL_FLOAT16 = 1, ACL_BF16 = 27 } aclDataType;
typedef enum { ACL_FORMAT_ND = 2 } aclFormat;
}
#endif

#if __has_include(<aclnn/acl_meta.h>)
#include <aclnn/acl_meta.h>
#define MOE_MC2_ACL_META_FROM_CANN 1
#else
extern "C" {
typedef struct aclTensor aclTensor;
typedef struct aclOpExecutor aclOpExecutor;
typedef int32_t aclnnStatus;
}
#endif

// The public API of the forward op: the package's header, with the types above.
#define MOE_MC2_ACLNN_TYPES_DECLARED 1
#include "aclnn_alltoall_allgather_bmm.h"

namespace moe_mc2 {
namespace aclnn {

// libnnopbase (reached through the op-API library's dependencies)
using CreateTensorFn = aclTensor *(*)(const int64_t *viewDims, uint64_t viewDimsNum, aclDataType dataType,
                                       const int64_t *stride, int64_t offset, aclFormat format,
                                       const int64_t *storageDims, uint64_t storageDimsNum, void *tensorData);
using DestroyTensorFn = aclnnStatus (*)(const aclTensor *tensor);

// Second stage of every aclnn op.
using RunFn = aclnnStatus (*)(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor, aclrtStream stream);

// aclnnAlltoAllAllGatherBatchMatMul[GetWorkspaceSize]: CANN's built-in and the moe_mc2 package.
using ForwardGetWorkspaceSizeFn = decltype(&::aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize);
static_assert(std::is_same<RunFn, decltype(&::aclnnAlltoAllAllGatherBatchMatMul)>::value,
              "the forward op's second stage differs from every other aclnn op's");

// CANN built-in (ops-transformer mc2/batch_mat_mul_reduce_scatter_allto_all/op_host/op_api).
using AdjointGetWorkspaceSizeFn = aclnnStatus (*)(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional,
    const char *groupEp, const char *groupTp, int64_t epWorldSize, int64_t tpWorldSize,
    int64_t yShardType, aclTensor *out,
    uint64_t *workspaceSize, aclOpExecutor **executor);

#ifdef MOE_MC2_ACL_META_FROM_CANN
static_assert(std::is_same<CreateTensorFn, decltype(&::aclCreateTensor)>::value,
              "aclCreateTensor differs from CANN's aclnn/acl_meta.h");
static_assert(std::is_same<DestroyTensorFn, decltype(&::aclDestroyTensor)>::value,
              "aclDestroyTensor differs from CANN's aclnn/acl_meta.h");
#endif

}  // namespace aclnn
}  // namespace moe_mc2
