// The moe_mc2 aclnn bridge as torch_npu builds it: the marshalling core (aclnn_core.h) plus the
// NPU launch. Built on first use by moe_mc2.integration.npu.load_extension with
// torch.utils.cpp_extension.load; tests/test_npu_bridge_compile.py compiles this file with the
// same flags against the torch-npu wheel's headers.
//
// Launch: the first stage (GetWorkspaceSize) runs on the calling thread, as torch_npu's
// op-plugin does; the second stage goes through torch_npu's task queue
// (OpCommand::RunOpApi) on the current NPU stream, so it stays ordered with the other NPU ops.
// The workspace comes from torch's caching allocator on the input's device; it and every tensor
// of the call are captured by the queued lambda, so they live until the launch has been issued.

#include "aclnn_core.h"

#include "torch_npu/csrc/core/npu/NPUStream.h"
#include "torch_npu/csrc/framework/OpCommand.h"

namespace {

struct NpuLauncher {
    static void launch(const char *op_type, moe_mc2::aclnn::Prepared prepared, const at::Tensor &device_like,
                       std::vector<at::Tensor> keep_alive) {
        at::Tensor workspace =
            at::empty({static_cast<int64_t>(prepared.workspace_size)}, device_like.options().dtype(at::kByte));
        void *workspace_ptr = prepared.workspace_size > 0 ? workspace.data_ptr() : nullptr;
        auto run = [prepared, workspace, workspace_ptr, keep_alive]() -> int {
            (void)workspace;
            (void)keep_alive;
            aclrtStream stream = c10_npu::getCurrentNPUStream().stream(false);
            return moe_mc2::aclnn::execute(prepared, workspace_ptr, stream);
        };
        at_npu::native::OpCommand::RunOpApi(op_type, run);
    }
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    moe_mc2::aclnn::define_module<NpuLauncher>(m);
}
