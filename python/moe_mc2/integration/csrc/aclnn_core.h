// aclnn_core.h — the marshalling core of the moe_mc2 aclnn bridge: which library and entry
// points serve an op (dlopen / dlsym), how a torch tensor becomes the arguments of
// aclCreateTensor, and the argument order of every aclnn call the bridge makes.
//
// It needs torch (ATen, pybind11) and aclnn_decls.h, never torch_npu: the NPU launch (workspace
// on the device, current NPU stream, torch_npu's task queue) is a `Launcher` supplied by the
// translation unit that builds the Python module — aag_bmm_aclnn.cpp on an NPU machine,
// tests/npu_fake/core_module.cpp in the tests, which run this same code against a fake op-API
// library on the CPU.
//
// Two call layouts (see aclnn_decls.h), one per op, whichever library serves it:
//   forward  aclnnAlltoAllAllGatherBatchMatMul, CANN's public argument list, exported by CANN's
//            built-in and by the moe_mc2 OPP package alike: x, weight as its logical
//            (E/ep, H, M/tp) view (a transposed one is recognised from its strides), bias,
//            group_ep, group_tp, ep_world_size, tp_world_size, x_shard_type, act_type, y1,
//            y2 / y3 (null when not produced);
//   adjoint  CANN's aclnnBatchMatMulReduceScatterAlltoAll: x, weight (logical (E/ep, M/tp, H)
//            view, transposed recognised from its strides), bias, group_ep, group_tp,
//            ep_world_size, tp_world_size, y_shard_type, out.
#pragma once

#include <dlfcn.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <torch/extension.h>

#include "aclnn_decls.h"

namespace moe_mc2 {
namespace aclnn {

// The entry points of one op, resolved from one op-API library.
struct Api {
    std::string library;
    std::string entry;  // e.g. "aclnnAlltoAllAllGatherBatchMatMul"
    CreateTensorFn create_tensor = nullptr;
    DestroyTensorFn destroy_tensor = nullptr;
    void *get_workspace_size = nullptr;  // ForwardGetWorkspaceSizeFn or AdjointGetWorkspaceSizeFn
    RunFn run = nullptr;

    bool bound() const { return run != nullptr; }
};

inline void *lookup(void *handle, const std::string &name) {
    dlerror();
    return dlsym(handle, name.c_str());
}

// dlopen `library` (where torch_npu has loaded it already, this is the same handle) and resolve
// `<entry>GetWorkspaceSize`, `<entry>`, and aclCreateTensor / aclDestroyTensor, which dlsym
// finds in the library's own dependencies (libnnopbase) or, failing that, in libnnopbase.so.
inline Api bind(const std::string &library, const std::string &entry) {
    void *handle = dlopen(library.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (handle == nullptr) {
        const char *why = dlerror();
        throw std::runtime_error("moe_mc2: cannot load " + library + ": " + (why ? why : "unknown error"));
    }
    Api api;
    api.library = library;
    api.entry = entry;
    api.get_workspace_size = lookup(handle, entry + "GetWorkspaceSize");
    api.run = reinterpret_cast<RunFn>(lookup(handle, entry));
    void *create = lookup(handle, "aclCreateTensor");
    void *destroy = lookup(handle, "aclDestroyTensor");
    if (create == nullptr || destroy == nullptr) {
        void *base = dlopen("libnnopbase.so", RTLD_LAZY | RTLD_LOCAL);
        if (base != nullptr) {
            create = create ? create : lookup(base, "aclCreateTensor");
            destroy = destroy ? destroy : lookup(base, "aclDestroyTensor");
        }
    }
    api.create_tensor = reinterpret_cast<CreateTensorFn>(create);
    api.destroy_tensor = reinterpret_cast<DestroyTensorFn>(destroy);
    std::string missing;
    if (api.get_workspace_size == nullptr) missing += " " + entry + "GetWorkspaceSize";
    if (api.run == nullptr) missing += " " + entry;
    if (api.create_tensor == nullptr) missing += " aclCreateTensor";
    if (api.destroy_tensor == nullptr) missing += " aclDestroyTensor";
    if (!missing.empty()) {
        throw std::runtime_error("moe_mc2: " + library + " does not provide:" + missing);
    }
    return api;
}

inline aclDataType acl_dtype(const at::Tensor &t) {
    switch (t.scalar_type()) {
        case at::kHalf: return ACL_FLOAT16;
        case at::kBFloat16: return ACL_BF16;
        case at::kFloat: return ACL_FLOAT;
        default:
            throw std::invalid_argument("moe_mc2 aclnn bridge: unsupported dtype " +
                                        std::string(c10::toString(t.scalar_type())));
    }
}

// CANN's test for "the last two dims of a batched matrix are transposed": unit stride on dim -2,
// dim -2's size as stride of dim -1, batch stride = the matrix size (IsTransposeLastTwoDims).
inline bool is_transposed_last_two(c10::IntArrayRef sizes, c10::IntArrayRef strides) {
    const size_t n = sizes.size();
    if (n < 2 || strides[n - 2] != 1 || strides[n - 1] != sizes[n - 2]) return false;
    int64_t expect = sizes[n - 1] * sizes[n - 2];
    for (size_t d = n - 2; d-- > 0;) {
        if (strides[d] != expect) return false;
        expect *= sizes[d];
    }
    return true;
}

// The aclTensors of one call; destroyed together, after the run (or on failure).
class TensorSet {
public:
    explicit TensorSet(DestroyTensorFn destroy) : destroy_(destroy) {}
    TensorSet(const TensorSet &) = delete;
    TensorSet &operator=(const TensorSet &) = delete;
    ~TensorSet() { release(); }

    // A view descriptor over the tensor's storage with torch's own sizes, strides and offset
    // (the way torch_npu's op-plugin describes a tensor to aclnn); an undefined tensor is null.
    aclTensor *add(CreateTensorFn create, const at::Tensor &t, c10::IntArrayRef sizes, c10::IntArrayRef strides) {
        if (!t.defined()) return nullptr;
        std::vector<int64_t> view(sizes.begin(), sizes.end());
        std::vector<int64_t> stride(strides.begin(), strides.end());
        std::vector<int64_t> storage{static_cast<int64_t>(t.storage().nbytes() / t.element_size())};
        aclTensor *a = create(view.data(), view.size(), acl_dtype(t), stride.data(), t.storage_offset(),
                              ACL_FORMAT_ND, storage.data(), storage.size(),
                              const_cast<void *>(static_cast<const void *>(t.storage().data())));
        if (a == nullptr) throw std::runtime_error("moe_mc2: aclCreateTensor returned null");
        tensors_.push_back(a);
        return a;
    }
    aclTensor *add(CreateTensorFn create, const at::Tensor &t) {
        return t.defined() ? add(create, t, t.sizes(), t.strides()) : nullptr;
    }
    aclTensor *add(CreateTensorFn create, const c10::optional<at::Tensor> &t) {
        return t.has_value() ? add(create, *t) : nullptr;
    }

    void release() {
        for (aclTensor *t : tensors_) destroy_(t);
        tensors_.clear();
    }

private:
    DestroyTensorFn destroy_;
    std::vector<aclTensor *> tensors_;
};

// A call whose first stage has succeeded: what the second stage needs.
struct Prepared {
    std::string entry;
    RunFn run = nullptr;
    uint64_t workspace_size = 0;
    aclOpExecutor *executor = nullptr;
    std::shared_ptr<TensorSet> tensors;  // shared: the launch lambda of torch_npu is copied
};

// Second stage; the call's aclTensors are destroyed once it has run.
inline aclnnStatus execute(const Prepared &p, void *workspace, aclrtStream stream) {
    aclnnStatus status = p.run(workspace, p.workspace_size, p.executor, stream);
    p.tensors->release();
    return status;
}

inline Prepared first_stage_done(const Api &api, aclnnStatus status, uint64_t workspace_size,
                                 aclOpExecutor *executor, std::shared_ptr<TensorSet> tensors) {
    if (status != 0) {
        tensors->release();
        TORCH_CHECK(false, "moe_mc2: ", api.entry, "GetWorkspaceSize (", api.library, ") failed with aclnn status ",
                    status);
    }
    Prepared p;
    p.entry = api.entry;
    p.run = api.run;
    p.workspace_size = workspace_size;
    p.executor = executor;
    p.tensors = std::move(tensors);
    return p;
}

// What both first stages need before anything is created: bound entry points, and a weight laid
// out as transpose_weight says (contiguous, or the transpose of a contiguous tensor).
inline void check_call(const Api &api, const char *op, const at::Tensor &weight, bool transpose_weight) {
    TORCH_CHECK(api.bound(), "moe_mc2: the ", op, " op's aclnn entry points are not bound");
    TORCH_CHECK(weight.dim() == 3, "moe_mc2: weight must be 3-D");
    TORCH_CHECK(transpose_weight ? is_transposed_last_two(weight.sizes(), weight.strides()) : weight.is_contiguous(),
                "moe_mc2: the weight must be contiguous or, with transpose_weight, the transpose of a contiguous "
                "tensor");
}

// npu_alltoall_allgather_bmm. `weight` is the logical (E/ep, H, M/tp) view: contiguous, or (with
// transpose_weight) the transpose of a contiguous (E/ep, M/tp, H) tensor, passed as that view: the
// callee (CANN's wrapper, or the package's) derives transpose_weight from its strides and the two
// output flags from which of y2 / y3 are null. y2 / y3 are absent when not produced.
inline Prepared prepare_forward(const Api &api, const at::Tensor &x, const at::Tensor &weight,
                                const c10::optional<at::Tensor> &bias, const std::string &group_ep,
                                const std::string &group_tp, int64_t ep_world_size, int64_t tp_world_size,
                                int64_t x_shard_type, int64_t act_type, bool transpose_weight, const at::Tensor &y1,
                                const c10::optional<at::Tensor> &y2, const c10::optional<at::Tensor> &y3) {
    check_call(api, "forward", weight, transpose_weight);
    auto tensors = std::make_shared<TensorSet>(api.destroy_tensor);
    auto create = api.create_tensor;
    aclTensor *a_x = tensors->add(create, x);
    aclTensor *a_w = tensors->add(create, weight);
    aclTensor *a_bias = tensors->add(create, bias);
    aclTensor *a_y1 = tensors->add(create, y1);
    aclTensor *a_y2 = tensors->add(create, y2);
    aclTensor *a_y3 = tensors->add(create, y3);
    uint64_t workspace_size = 0;
    aclOpExecutor *executor = nullptr;
    auto fn = reinterpret_cast<ForwardGetWorkspaceSizeFn>(api.get_workspace_size);
    aclnnStatus status = fn(a_x, a_w, a_bias, group_ep.c_str(), group_tp.c_str(), ep_world_size, tp_world_size,
                            x_shard_type, act_type, a_y1, a_y2, a_y3, &workspace_size, &executor);
    return first_stage_done(api, status, workspace_size, executor, std::move(tensors));
}

// npu_bmm_reducescatter_alltoall. `weight` is the logical (E/ep, M/tp, H) view: contiguous, or
// (transpose_weight) the transpose of a contiguous (E/ep, H, M/tp) tensor.
inline Prepared prepare_adjoint(const Api &api, const at::Tensor &x, const at::Tensor &weight,
                                const c10::optional<at::Tensor> &bias, const std::string &group_ep,
                                const std::string &group_tp, int64_t ep_world_size, int64_t tp_world_size,
                                int64_t y_shard_type, bool transpose_weight, const at::Tensor &out) {
    check_call(api, "adjoint", weight, transpose_weight);
    auto tensors = std::make_shared<TensorSet>(api.destroy_tensor);
    auto create = api.create_tensor;
    aclTensor *a_x = tensors->add(create, x);
    aclTensor *a_w = tensors->add(create, weight);
    aclTensor *a_bias = tensors->add(create, bias);
    aclTensor *a_out = tensors->add(create, out);
    uint64_t workspace_size = 0;
    aclOpExecutor *executor = nullptr;
    auto fn = reinterpret_cast<AdjointGetWorkspaceSizeFn>(api.get_workspace_size);
    aclnnStatus status = fn(a_x, a_w, a_bias, group_ep.c_str(), group_tp.c_str(), ep_world_size, tp_world_size,
                            y_shard_type, a_out, &workspace_size, &executor);
    return first_stage_done(api, status, workspace_size, executor, std::move(tensors));
}

// ---- the Python module: the same for the NPU build and the CPU test build -----------------------
//
// Launcher::launch(const char *op_type, Prepared prepared, const at::Tensor &device_like,
//                  std::vector<at::Tensor> keep_alive) runs the second stage.

struct Bound {
    Api forward;
    Api adjoint;
};

inline Bound &bound_apis() {
    static Bound b;
    return b;
}

template <class Launcher>
void define_module(pybind11::module_ &m) {
    m.def(
        "bind",
        [](const std::string &op, const std::string &library, const std::string &entry) {
            TORCH_CHECK(op == "forward" || op == "adjoint", "moe_mc2: unknown op '", op, "'");
            // the call layout is the op's, so the entry point must be the op's
            const char *want =
                op == "forward" ? "aclnnAlltoAllAllGatherBatchMatMul" : "aclnnBatchMatMulReduceScatterAlltoAll";
            TORCH_CHECK(entry == want, "moe_mc2: ", entry, " cannot serve the ", op, " op (", want, " does)");
            (op == "forward" ? bound_apis().forward : bound_apis().adjoint) = bind(library, entry);
        },
        "dlopen an op-API library and resolve one op's aclnn entry points (op: forward | adjoint)");
    m.def(
        "bound",
        [](const std::string &op) -> pybind11::object {
            const Api &api = op == "forward" ? bound_apis().forward : bound_apis().adjoint;
            if (!api.bound()) return pybind11::none();
            return pybind11::make_tuple(api.library, api.entry);
        },
        "(library, entry) bound for op, or None");
    m.def(
        "forward",
        [](const at::Tensor &x, const at::Tensor &weight, const c10::optional<at::Tensor> &bias,
           const std::string &group_ep, const std::string &group_tp, int64_t ep, int64_t tp, int64_t x_shard_type,
           int64_t act_type, bool transpose_weight, const at::Tensor &y1, const c10::optional<at::Tensor> &y2,
           const c10::optional<at::Tensor> &y3) {
            Prepared p = prepare_forward(bound_apis().forward, x, weight, bias, group_ep, group_tp, ep, tp,
                                         x_shard_type, act_type, transpose_weight, y1, y2, y3);
            std::vector<at::Tensor> keep{x, weight, y1};
            if (bias) keep.push_back(*bias);
            if (y2) keep.push_back(*y2);
            if (y3) keep.push_back(*y3);
            Launcher::launch("AlltoAllAllGatherBatchMatMul", std::move(p), x, std::move(keep));
        },
        "npu_alltoall_allgather_bmm through the bound aclnn entry points");
    m.def(
        "adjoint",
        [](const at::Tensor &x, const at::Tensor &weight, const c10::optional<at::Tensor> &bias,
           const std::string &group_ep, const std::string &group_tp, int64_t ep, int64_t tp, int64_t y_shard_type,
           bool transpose_weight, const at::Tensor &out) {
            Prepared p = prepare_adjoint(bound_apis().adjoint, x, weight, bias, group_ep, group_tp, ep, tp,
                                         y_shard_type, transpose_weight, out);
            std::vector<at::Tensor> keep{x, weight, out};
            if (bias) keep.push_back(*bias);
            Launcher::launch("BatchMatMulReduceScatterAlltoAll", std::move(p), x, std::move(keep));
        },
        "npu_bmm_reducescatter_alltoall through the bound aclnn entry points");
}

}  // namespace aclnn
}  // namespace moe_mc2
