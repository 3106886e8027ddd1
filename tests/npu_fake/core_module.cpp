// The aclnn bridge's Python module as the tests build it: the same marshalling core and module
// definition (python/moe_mc2/integration/csrc/aclnn_core.h) as the NPU build, with a launcher that
// runs the second stage at once on the CPU: the workspace is a CPU byte tensor and the stream a
// fixed marker (FAKE_STREAM), so the tests can see both arrive in the library.
#include "aclnn_core.h"

namespace {

constexpr uintptr_t kFakeStream = 0x5eed;
std::string g_last_op_type;

struct CpuLauncher {
    static void launch(const char *op_type, moe_mc2::aclnn::Prepared prepared, const at::Tensor &device_like,
                       std::vector<at::Tensor> keep_alive) {
        (void)keep_alive;
        g_last_op_type = op_type;
        at::Tensor workspace =
            at::empty({static_cast<int64_t>(prepared.workspace_size)}, device_like.options().dtype(at::kByte));
        void *workspace_ptr = prepared.workspace_size > 0 ? workspace.data_ptr() : nullptr;
        aclnnStatus status =
            moe_mc2::aclnn::execute(prepared, workspace_ptr, reinterpret_cast<aclrtStream>(kFakeStream));
        TORCH_CHECK(status == 0, "moe_mc2: ", prepared.entry, " failed with aclnn status ", status);
    }
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    moe_mc2::aclnn::define_module<CpuLauncher>(m);
    m.attr("FAKE_STREAM") = static_cast<uint64_t>(kFakeStream);
    m.def("last_op_type", []() { return g_last_op_type; });
#ifdef MOE_MC2_ACL_BASE_FROM_CANN
    m.attr("ACL_TYPES_FROM") = "acl/acl_base.h";
#else
    m.attr("ACL_TYPES_FROM") = "aclnn_decls.h";
#endif
}
