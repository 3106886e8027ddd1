/*
 * The public aclnn API of AlltoAllAllGatherBatchMatMul (aclnn_alltoall_allgather_bmm.h) over the
 * API opbuild generates from the OpDef under the inner name (aclnn_alltoall_allgather_bmm_inner.h).
 *
 * First stage, in this order:
 *   1. null x / weight / y1Out / group names, null workspaceSize / executor -> 161001;
 *   2. the operator's rules on the arguments, through the portable core (op_host/core, the code the
 *      tiling runs; first failure wins; the message names the aclnn parameter and the rule id)
 *      -> 161002;
 *   3. y3OutOptional with actType 0 (no pre-activation result to write) -> 161002, as CANN does;
 *   4. y1 / y2 / y3 of the shapes and dtype the rules infer -> 161002 otherwise (the kernel writes
 *      them whole: a smaller tensor would be overrun);
 *   5. transpose_weight: whether the weight's view is the transpose of a contiguous tensor, with
 *      CANN's criterion (see the header); if so, the inner API gets a second descriptor of the same
 *      memory in its stored (E/ep, M/tp, H) layout (dims and strides 1 and 2 swapped; offset,
 *      storage shape, dtype, format and address unchanged), else the weight as given;
 *      output_y2_flag / output_y3_flag: y2 / y3 not null;
 *   6. the inner first stage with those; its status is returned as it is.
 * The descriptor of step 5 belongs to the executor: it is destroyed after the second stage has run
 * it (or at once when the inner first stage fails, or when a later first stage hands out the same
 * executor again without a second stage in between).
 *
 * Only CANN's public headers are used (aclnn/aclnn_base.h, acl/acl_base.h through it); errors are
 * logged with aclAppLog. The code is C++11, as the msOpGen project compiles it.
 */
#include "aclnn_alltoall_allgather_bmm.h"

#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "aclnn_alltoall_allgather_bmm_inner.h"

#ifdef MOE_MC2_ACLNN_INNER_HEADER
#include MOE_MC2_ACLNN_INNER_HEADER
#endif

// The contract's rules (op_host/core/aag_bmm_rules.cpp), compiled into this library under a
// namespace of its own: the package's tiling library carries the same code as moe_mc2::, and a
// project template that also compiles op_host/*.cpp into the op-API library must not see a second
// definition of it.
#define moe_mc2 moe_mc2_opapi_rules
#include "../core/aag_bmm_rules.cpp"
#undef moe_mc2

namespace {

namespace rules = ::moe_mc2_opapi_rules;
using moe_mc2_opapi::InnerGetWorkspaceSizeFn;
using moe_mc2_opapi::InnerRunFn;

#ifdef MOE_MC2_ACLNN_INNER_HEADER
// opbuild's declaration against ours, parameter by parameter; `const T *` and `T *` pass the same.
template <class T> struct Abi { using type = T; };
template <class T> struct Abi<const T *> { using type = T *; };
template <class... A> struct TypeList {};
template <class F> struct AbiOf;
template <class R, class... A> struct AbiOf<R (*)(A...)> {
    using type = TypeList<R, typename Abi<A>::type...>;
};
static_assert(std::is_same<AbiOf<decltype(&::aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize)>::type,
                           AbiOf<InnerGetWorkspaceSizeFn>::type>::value,
              "opbuild's aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize takes other arguments than "
              "op_host/op_api/aclnn_alltoall_allgather_bmm_inner.h says: the OpDef and the wrapper disagree");
static_assert(std::is_same<AbiOf<decltype(&::aclnnInnerAlltoAllAllGatherBatchMatMul)>::type,
                           AbiOf<InnerRunFn>::type>::value,
              "opbuild's aclnnInnerAlltoAllAllGatherBatchMatMul differs from the second stage the wrapper calls");
#else
static_assert(std::is_same<decltype(&::aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize),
                           InnerGetWorkspaceSizeFn>::value,
              "aclnn_alltoall_allgather_bmm_inner.h: declaration and InnerGetWorkspaceSizeFn differ");
static_assert(std::is_same<decltype(&::aclnnInnerAlltoAllAllGatherBatchMatMul), InnerRunFn>::value,
              "aclnn_alltoall_allgather_bmm_inner.h: declaration and InnerRunFn differ");
#endif

constexpr aclnnStatus kParamNullptr = 161001;  // ACLNN_ERR_PARAM_NULLPTR
constexpr aclnnStatus kParamInvalid = 161002;  // ACLNN_ERR_PARAM_INVALID
constexpr aclnnStatus kInnerError = 561000;    // ACLNN_ERR_INNER: a descriptor could not be read or made
const char *const kApi = "aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize";

aclnnStatus Reject(aclnnStatus code, int line, const std::string &why)
{
    aclAppLog(ACL_ERROR, kApi, __FILE__, static_cast<uint32_t>(line), "%s (moe_mc2): %s", kApi, why.c_str());
    return code;
}

// What the first stage reads of an aclTensor (acl_meta.h's getters; their arrays are ours to free).
struct View {
    std::vector<int64_t> shape;
    std::vector<int64_t> strides;
    std::vector<int64_t> storage;
    int64_t offset = 0;
    aclDataType dtype = ACL_DT_UNDEFINED;
    aclFormat format = ACL_FORMAT_UNDEFINED;
    void *address = nullptr;
};

// One of acl_meta.h's array getters into `out`; the getter allocates the array, we free it.
using ArrayGetter = aclnnStatus (*)(const aclTensor *, int64_t **, uint64_t *);

bool ReadArray(ArrayGetter get, const aclTensor *t, std::vector<int64_t> *out)
{
    int64_t *values = nullptr;
    uint64_t n = 0;
    const aclnnStatus status = get(t, &values, &n);
    if (status == 0 && values != nullptr) out->assign(values, values + n);
    delete[] values;
    return status == 0 && (values != nullptr || n == 0);
}

// Shape and dtype; with `whole`, also strides, storage shape, offset, format and address.
bool ReadView(const aclTensor *t, bool whole, View *v)
{
    if (!ReadArray(aclGetViewShape, t, &v->shape) || aclGetDataType(t, &v->dtype) != 0) return false;
    if (!whole) return true;
    return ReadArray(aclGetViewStrides, t, &v->strides) && ReadArray(aclGetStorageShape, t, &v->storage) &&
           aclGetViewOffset(t, &v->offset) == 0 && aclGetFormat(t, &v->format) == 0 &&
           aclGetRawTensorAddr(t, &v->address) == 0;
}

rules::DType ToRules(aclDataType d)
{
    switch (d) {
        case ACL_FLOAT16: return rules::DType::kFloat16;
        case ACL_BF16: return rules::DType::kBFloat16;
        case ACL_FLOAT: return rules::DType::kFloat32;
        default: return rules::DType::kOther;
    }
}

// The contract names an argument as the Python op does; the message names the aclnn parameter.
std::string InAclnnTerms(const rules::RuleError &e)
{
    static const char *const kNames[][2] = {
        {"x", "x"},
        {"weight", "weight"},
        {"bias", "biasOptional"},
        {"group_ep", "groupEp"},
        {"group_tp", "groupTp"},
        {"group_ep_worldsize", "epWorldSize"},
        {"group_tp_worldsize", "tpWorldSize"},
        {"shard_type", "xShardType"},
        {"act_type", "actType"},
    };
    const std::string prefix = e.arg + ": ";
    if (e.message.compare(0, prefix.size(), prefix) != 0) return e.message;
    for (const auto &n : kNames) {
        if (e.arg == n[0]) return std::string(n[1]) + ": " + e.message.substr(prefix.size());
    }
    return e.message;
}

std::string ShapeText(const std::vector<int64_t> &s)
{
    std::string out = "[";
    for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
    return out + "]";
}

// CANN's test for a batched matrix whose last two dims are transposed, for a 3-D view: unit
// stride on dim 1, dim 1's size as stride of dim 2, the matrix size as batch stride; a 1 x 1
// matrix counts as not transposed.
bool IsTransposedLastTwo(const View &w)
{
    const std::vector<int64_t> &d = w.shape;
    const std::vector<int64_t> &s = w.strides;
    if (d.size() != 3U || s.size() != 3U) return false;
    if (s[1] != 1 || s[2] != d[1] || s[0] != d[1] * d[2]) return false;
    return !(d[1] == 1 && d[2] == 1);
}

// The stored (E/ep, M/tp, H) layout of a transposed weight view: the same memory, dims and
// strides 1 and 2 swapped.
aclTensor *StoredLayout(const View &w)
{
    std::vector<int64_t> dims = {w.shape[0], w.shape[2], w.shape[1]};
    std::vector<int64_t> strides = {w.strides[0], w.strides[2], w.strides[1]};
    return aclCreateTensor(dims.data(), dims.size(), w.dtype, strides.data(), w.offset, w.format, w.storage.data(),
                           w.storage.size(), w.address);
}

// Descriptors the wrapper made for an executor, destroyed once the executor has run.
std::mutex &KeptMutex()
{
    static std::mutex m;
    return m;
}

std::unordered_map<aclOpExecutor *, aclTensor *> &Kept()
{
    static std::unordered_map<aclOpExecutor *, aclTensor *> kept;
    return kept;
}

void Keep(aclOpExecutor *executor, aclTensor *tensor)
{
    aclTensor *stale = nullptr;
    {
        std::lock_guard<std::mutex> lock(KeptMutex());
        aclTensor *&slot = Kept()[executor];
        stale = slot;  // the executor was handed out again without running: its old call is gone
        slot = tensor;
    }
    if (stale != nullptr) aclDestroyTensor(stale);
}

aclTensor *Release(aclOpExecutor *executor)
{
    std::lock_guard<std::mutex> lock(KeptMutex());
    auto it = Kept().find(executor);
    if (it == Kept().end()) return nullptr;
    aclTensor *t = it->second;
    Kept().erase(it);
    return t;
}

bool OutputOk(const char *name, const View &y, const std::vector<int64_t> &want, aclDataType xType,
              std::string *why)
{
    if (y.shape != want || y.dtype != xType) {
        *why = std::string(name) + " is " + ShapeText(y.shape) + " of dtype " + rules::DTypeName(ToRules(y.dtype)) +
               ", must be " + ShapeText(want) + " of x's dtype " + rules::DTypeName(ToRules(xType));
        return false;
    }
    return true;
}

}  // namespace

extern "C" {

aclnnStatus aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
    const aclTensor *x, const aclTensor *weight, const aclTensor *biasOptional, const char *groupEp,
    const char *groupTp, int64_t epWorldSize, int64_t tpWorldSize, int64_t xShardType, int64_t actType,
    aclTensor *y1Out, aclTensor *y2OutOptional, aclTensor *y3OutOptional, uint64_t *workspaceSize,
    aclOpExecutor **executor)
{
    // 1. required pointers
    if (x == nullptr || weight == nullptr || y1Out == nullptr) {
        return Reject(kParamNullptr, __LINE__, std::string(x == nullptr ? "x" : weight == nullptr ? "weight" : "y1Out") +
                                                   " is null");
    }
    if (groupEp == nullptr || groupEp[0] == '\0' || groupTp == nullptr || groupTp[0] == '\0') {
        return Reject(kParamNullptr, __LINE__,
                      std::string(groupEp == nullptr || groupEp[0] == '\0' ? "groupEp" : "groupTp") +
                          " is null or empty");
    }
    if (workspaceSize == nullptr || executor == nullptr) {
        return Reject(kParamNullptr, __LINE__, workspaceSize == nullptr ? "workspaceSize is null" : "executor is null");
    }

    // 2. the operator's rules
    View vx, vw, vb, v1, v2, v3;
    bool read = ReadView(x, false, &vx) && ReadView(weight, true, &vw) && ReadView(y1Out, false, &v1) &&
                (biasOptional == nullptr || ReadView(biasOptional, false, &vb)) &&
                (y2OutOptional == nullptr || ReadView(y2OutOptional, false, &v2)) &&
                (y3OutOptional == nullptr || ReadView(y3OutOptional, false, &v3));
    if (!read) return Reject(kInnerError, __LINE__, "cannot read a tensor's view through acl_meta.h");
    rules::Args a;
    a.x = vx.shape;
    a.weight = vw.shape;  // the logical (E/ep, H, M/tp) view, transposed or not
    a.hasBias = biasOptional != nullptr;
    a.bias = vb.shape;
    a.xDtype = ToRules(vx.dtype);
    a.weightDtype = ToRules(vw.dtype);
    a.biasDtype = ToRules(vb.dtype);
    a.ep = epWorldSize;
    a.tp = tpWorldSize;
    a.shardType = xShardType;
    a.actType = actType;
    a.groupEp = groupEp;
    a.groupTp = groupTp;
    a.y2Flag = y2OutOptional != nullptr;
    a.y3Flag = y3OutOptional != nullptr;
    rules::RuleError broken = rules::Validate(a, /*portable=*/false);
    if (!broken.ok()) return Reject(kParamInvalid, __LINE__, InAclnnTerms(broken));

    // 3. a pre-activation result only exists with an activation
    if (y3OutOptional != nullptr && actType == 0) {
        return Reject(kParamInvalid, __LINE__, "y3OutOptional is given with actType 0 (None): there is no "
                                               "result before the activation; pass null");
    }

    // 4. the outputs the kernel writes
    rules::OutShapes want = rules::InferShapes(a);
    std::string why;
    if (!OutputOk("y1Out", v1, want.y1, vx.dtype, &why) ||
        (y2OutOptional != nullptr && !OutputOk("y2OutOptional", v2, want.y2, vx.dtype, &why)) ||
        (y3OutOptional != nullptr && !OutputOk("y3OutOptional", v3, want.y3, vx.dtype, &why))) {
        return Reject(kParamInvalid, __LINE__, why);
    }

    // 5. the three attributes the public API does not take
    const bool transposeWeight = IsTransposedLastTwo(vw);
    aclTensor *stored = nullptr;
    if (transposeWeight) {
        stored = StoredLayout(vw);
        if (stored == nullptr) return Reject(kInnerError, __LINE__, "aclCreateTensor failed for the stored weight");
    }

    // 6. the generated API
    *executor = nullptr;
    aclnnStatus status = aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize(
        x, transposeWeight ? stored : weight, biasOptional, const_cast<char *>(groupEp), const_cast<char *>(groupTp),
        epWorldSize, tpWorldSize, xShardType, actType, transposeWeight, y2OutOptional != nullptr,
        y3OutOptional != nullptr, y1Out, y2OutOptional, y3OutOptional, workspaceSize, executor);
    if (stored != nullptr) {
        if (status == 0 && *executor != nullptr) {
            Keep(*executor, stored);
        } else {
            aclDestroyTensor(stored);
        }
    }
    return status;
}

aclnnStatus aclnnAlltoAllAllGatherBatchMatMul(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                              aclrtStream stream)
{
    aclnnStatus status = aclnnInnerAlltoAllAllGatherBatchMatMul(workspace, workspaceSize, executor, stream);
    aclTensor *stored = Release(executor);
    if (stored != nullptr) aclDestroyTensor(stored);
    return status;
}

int64_t moe_mc2_aclnn_api_version(void) { return MOE_MC2_ACLNN_API_VERSION; }

}  // extern "C"
