// Bridge from torch_npu tensors to aclnnAlltoAllAllGatherBatchMatMul of the moe_mc2 OPP package.
//
// Built by moe_mc2.integration.npu.load_extension with torch.utils.cpp_extension.load. The aclnn
// entry points are resolved with dlsym from the package's libcust_opapi.so (bind()), so this file
// compiles without the package's generated headers and one build serves any install location.
// Launches go through torch_npu's task queue (OpCommand::RunOpApi) so they stay ordered with the
// other NPU ops of the current stream.
//
// Argument order of the generated aclnn API: inputs (x, weight, bias), then the attributes in
// OpDef order (group_ep, group_tp, ep_world_size, tp_world_size, x_shard_type, act_type,
// transpose_weight, output_y2_flag, output_y3_flag), then outputs (y1, y2, y3);
// tests/test_conformance.py checks that the OpDef declares them in that order.

#include <dlfcn.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/extension.h>

#include "aclnn/acl_meta.h"
#include "torch_npu/csrc/core/npu/NPUStream.h"
#include "torch_npu/csrc/framework/OpCommand.h"

namespace {

using GetWorkspaceFn = int (*)(const aclTensor *, const aclTensor *, const aclTensor *, const char *, const char *,
                               int64_t, int64_t, int64_t, int64_t, bool, bool, bool, aclTensor *, aclTensor *,
                               aclTensor *, uint64_t *, aclOpExecutor **);
using RunFn = int (*)(void *, uint64_t, aclOpExecutor *, aclrtStream);

GetWorkspaceFn g_get_workspace = nullptr;
RunFn g_run = nullptr;

aclDataType acl_dtype(const at::Tensor &t) {
    switch (t.scalar_type()) {
        case at::kHalf: return ACL_FLOAT16;
        case at::kBFloat16: return ACL_BF16;
        case at::kFloat: return ACL_FLOAT;
        default: throw std::invalid_argument("moe_mc2 aclnn bridge: unsupported dtype " +
                                             std::string(c10::toString(t.scalar_type())));
    }
}

// A view descriptor over the tensor's storage: sizes/strides as torch has them, so aclnn sees the
// same memory the tensor names (the caller passes contiguous tensors or the stored weight layout).
aclTensor *to_acl(const at::Tensor &t) {
    std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
    std::vector<int64_t> strides(t.strides().begin(), t.strides().end());
    int64_t storage_elems = static_cast<int64_t>(t.storage().nbytes() / t.element_size());
    std::vector<int64_t> storage{storage_elems};
    return aclCreateTensor(sizes.data(), sizes.size(), acl_dtype(t), strides.data(), t.storage_offset(),
                           ACL_FORMAT_ND, storage.data(), storage.size(),
                           const_cast<void *>(static_cast<const void *>(t.storage().data())));  // const in newer torch
}

void bind(const std::string &library, const std::string &symbol) {
    void *handle = dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
        throw std::runtime_error("moe_mc2: cannot load " + library + ": " + dlerror());
    }
    g_get_workspace = reinterpret_cast<GetWorkspaceFn>(dlsym(handle, (symbol + "GetWorkspaceSize").c_str()));
    g_run = reinterpret_cast<RunFn>(dlsym(handle, symbol.c_str()));
    if (g_get_workspace == nullptr || g_run == nullptr) {
        throw std::runtime_error("moe_mc2: " + library + " lacks " + symbol + "[GetWorkspaceSize]");
    }
}

void run(const at::Tensor &x, const at::Tensor &weight, const c10::optional<at::Tensor> &bias,
         const std::string &comm_ep, const std::string &comm_tp, int64_t ep, int64_t tp, int64_t shard_type,
         int64_t act_type, bool transpose_weight, bool y2_flag, bool y3_flag, at::Tensor &y1, at::Tensor &y2,
         at::Tensor &y3) {
    TORCH_CHECK(g_get_workspace != nullptr, "moe_mc2: bind() the OPP library before run()");
    aclTensor *ax = to_acl(x);
    aclTensor *aw = to_acl(weight);
    aclTensor *ab = bias.has_value() ? to_acl(*bias) : nullptr;
    aclTensor *a1 = to_acl(y1);
    aclTensor *a2 = to_acl(y2);
    aclTensor *a3 = to_acl(y3);
    uint64_t workspace_size = 0;
    aclOpExecutor *executor = nullptr;
    int rc = g_get_workspace(ax, aw, ab, comm_ep.c_str(), comm_tp.c_str(), ep, tp, shard_type, act_type,
                             transpose_weight, y2_flag, y3_flag, a1, a2, a3, &workspace_size, &executor);
    auto release = [=]() {
        for (aclTensor *t : {ax, aw, ab, a1, a2, a3}) {
            if (t != nullptr) aclDestroyTensor(t);
        }
    };
    if (rc != 0) {
        release();
        TORCH_CHECK(false, "moe_mc2: aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize failed with ", rc);
    }
    // The workspace comes from torch's caching allocator on x's stream, so it lives as long as the
    // launch needs it; tensors are captured by value to keep their storage alive until then.
    at::Tensor workspace = at::empty({static_cast<int64_t>(workspace_size)}, x.options().dtype(at::kByte));
    void *workspace_ptr = workspace_size > 0 ? workspace.data_ptr() : nullptr;
    auto launch = [=]() -> int {
        (void)workspace;  // captured for its lifetime
        (void)x; (void)weight; (void)y1; (void)y2; (void)y3;
        aclrtStream stream = c10_npu::getCurrentNPUStream().stream(false);
        int status = g_run(workspace_ptr, workspace_size, executor, stream);
        release();
        return status;
    };
    at_npu::native::OpCommand::RunOpApi("AlltoAllAllGatherBatchMatMul", launch);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("bind", &bind, "dlopen the OPP's libcust_opapi.so and resolve the aclnn entry points");
    m.def("run", &run, "aclnnAlltoAllAllGatherBatchMatMul on the current NPU stream");
}
