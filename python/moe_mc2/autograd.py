"""Autograd of both ops, each expressed through the other (they are adjoint routes).

Forward op  (y1, y2, y3) = F(x, weight, bias): y3 = bmm(gather(x), weight) + bias, y1 = act(y3)
  g3          = g1 * act'(y3) (+ the gradient of y3 when the user took it)
  grad_weight = y2^T g3                       (per rank, local)
  grad_bias   = sum over rows of g3           (per rank, shaped like bias)
  grad_x      = npu_bmm_reducescatter_alltoall(g3, weight^T)   (+ route(g2) if y2 was used)
Adjoint op  out = A(x, weight, bias): out = route(bmm(x, weight)) + bias
  y1, y2, _   = npu_alltoall_allgather_bmm(g, weight^T, act None, need_allgather_out)
  grad_x      = y1,  grad_weight = x^T y2,  grad_bias = the rows of y2 this rank's bias fed.

Why not `torch.library.register_autograd`: both schemas take `bias` keyword-only, and
register_autograd refuses kwarg-only Tensor arguments (NotImplementedError in torch 2.13). So the
same structure - a `setup_context` that saves only what backward needs and a `backward` - is
installed as the ops' Autograd kernels (`torch.library.Library.impl(..., "Autograd")`) around an
autograd.Function that redispatches below autograd, exactly what register_autograd generates.

What is saved: y2 only when weight needs a gradient (the forward is asked for y2 internally; the
user's y2 stays empty if they did not ask), y3 when the activation needs it (Relu uses y1 > 0
instead), weight when x needs a gradient.

Higher derivatives. The internal y2 and y3 are outputs of the autograd.Function (the user gets
them only when asked), so under `create_graph=True` the saved y2/y3 carry their dependence on
x, weight and bias, and every step of both backwards is itself differentiable: torch ops, the
two ops (through these same kernels), and the y2 route, whose derivative is the gather. So the
first-order gradients carry a graph whenever they depend on a leaf, and double backward equals
single-process autograd (tests/test_autograd.py checks both ops).
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from . import adjoint_ops  # noqa: F401  (defines the adjoint op)
from .contract import activations
from .contract.activations import Act
from .contract.names import ADJOINT_OP_NAME, LIBRARY, OP_NAME
from .contract.rules import EMPTY_OUTPUT_SHAPE, is_transposed_weight

_lib = torch.library.Library(LIBRARY, "IMPL")

_FORWARD_DEFAULTS = dict(shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False)


def _below_autograd(op, keyset, *args, **kwargs):
    with torch._C._AutoDispatchBelowAutograd():
        return op.redispatch(keyset & torch._C._after_autograd_keyset, *args, **kwargs)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _matmul32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched a @ b with an fp32 result (bf16 uses the native GEMM; fp16 is upcast on CPU)."""
    if a.dtype == torch.float32 or (a.dtype == torch.float16 and a.device.type == "cpu"):
        return torch.bmm(a.float(), b.float())
    if a.device.type == "cuda":
        return torch.bmm(a, b, out_dtype=torch.float32)
    return torch.bmm(a, b).float()


def _grad_weight(a: torch.Tensor, g: torch.Tensor, dtype: torch.dtype, transposed: bool) -> torch.Tensor:
    """a^T g (El, K, N) in `dtype`; laid out like a transposed weight when the weight was one."""
    if transposed:
        return _matmul32(g.transpose(1, 2), a).to(dtype).transpose(1, 2)
    return _matmul32(a.transpose(1, 2), g).to(dtype)


# --- the forward op ----------------------------------------------------------------------------

def forward_setup_context(ctx, inputs, keyword_only_inputs, output, *, needs):
    """Save what the backward of npu_alltoall_allgather_bmm needs (see the module doc)."""
    x, weight = inputs
    kw = keyword_only_inputs
    bias = kw.get("bias")
    y1, y2, y3 = output
    act = kw["act_type"]
    need_x, need_w, _need_b = needs
    ctx.kw = kw
    ctx.bias_meta = None if bias is None else (tuple(bias.shape), bias.dtype)
    ctx.x_dtype = x.dtype
    ctx.w_dtype, ctx.w_transposed = weight.dtype, is_transposed_weight(weight)
    ctx.act = act
    if act == Act.RELU:
        act_src = y1
    elif act != Act.NONE:
        act_src = y3
    else:
        act_src = None
    ctx.save_for_backward(weight if need_x else None, y2 if need_w else None, act_src)


def forward_backward(ctx, g1, g2, g3u):
    weight, y2, act_src = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    kw = ctx.kw
    if g1 is None and g3u is None and g2 is None:
        return None, None, None, None
    g3 = None
    if g1 is not None:
        g3 = g1.float()
        if ctx.act == Act.RELU:  # as torch's relu: a graph through y1 with a zero second derivative
            g3 = torch.ops.aten.threshold_backward(g3, act_src.to(g3.dtype), 0)
        elif ctx.act != Act.NONE:
            g3 = g3 * activations.derivative(act_src.float(), ctx.act)
    if g3u is not None and g3u.numel():
        g3 = g3u.float() if g3 is None else g3 + g3u.float()
    grad_x = grad_w = grad_b = None
    if g3 is not None:
        g3c = g3.to(ctx.x_dtype)
        if need_x:
            grad_x = torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(
                g3c, weight.transpose(1, 2), group_ep=kw["group_ep"], group_ep_worldsize=kw["group_ep_worldsize"],
                group_tp=kw["group_tp"], group_tp_worldsize=kw["group_tp_worldsize"], shard_type=kw["shard_type"])
        if need_w:
            grad_w = _grad_weight(y2, g3c, ctx.w_dtype, ctx.w_transposed)
        if need_b and ctx.bias_meta is not None:
            shape, dtype = ctx.bias_meta
            grad_b = g3.sum(1).reshape(shape).to(dtype)
    if need_x and g2 is not None and g2.numel():
        routed = _Route.apply(g2, _group_kw(kw))
        grad_x = routed if grad_x is None else grad_x + routed
    return grad_x, grad_w, grad_b, None


def _group_kw(kw) -> tuple:
    return (kw["group_ep"], kw["group_ep_worldsize"], kw["group_tp"], kw["group_tp_worldsize"], kw["shard_type"])


def _route(g, gkw):
    """The adjoint of the forward op's gather (its y2): out rows back to the ranks x came from."""
    from .runtime import adjoint

    group_ep, ep, group_tp, tp, st = gkw
    return adjoint.run(g, None, None, group_ep=group_ep, ep=ep, group_tp=group_tp, tp=tp, shard_type=st)


def _gather(x, gkw):
    """The forward op's y2 (AllToAll + AllGather of x), through the op with a one-column weight."""
    group_ep, ep, group_tp, tp, st = gkw
    H = x.shape[2] if st == 1 else x.shape[2] * tp
    w = x.new_zeros((x.shape[0] // ep, H, 1))
    with torch._C._AutoDispatchBelowAutograd():
        return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            x, w, group_ep=group_ep, group_ep_worldsize=ep, group_tp=group_tp, group_tp_worldsize=tp,
            shard_type=st, act_type=0, need_allgather_out=True)[1]


class _Route(torch.autograd.Function):
    """route(g) (linear); its derivative is the gather, so grads through it stay differentiable."""

    @staticmethod
    def forward(ctx, g, gkw):
        ctx.gkw = gkw
        return _route(g, gkw)

    @staticmethod
    def backward(ctx, h):
        return _Gather.apply(h.contiguous(), ctx.gkw), None


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gkw):
        ctx.gkw = gkw
        return _gather(x, gkw)

    @staticmethod
    def backward(ctx, g):
        return _Route.apply(g.contiguous(), ctx.gkw), None


class _ForwardFn(torch.autograd.Function):
    """(y1, y2, y3) with y2 / y3 produced whenever backward needs them: they are outputs so that
    the saved copies keep their graph under create_graph (see the module doc)."""

    @staticmethod
    def forward(ctx, x, weight, bias, meta):
        keyset, kw, needs = meta
        y1, y2, y3 = _below_autograd(_FORWARD_OP, keyset, x, weight, bias=bias, **kw)
        forward_setup_context(ctx, (x, weight), dict(kw, bias=bias), (y1, y2, y3), needs=needs)
        ctx.set_materialize_grads(False)
        for t in (y2, y3):
            if t.numel() == 0:
                ctx.mark_non_differentiable(t)
        return y1, y2, y3

    @staticmethod
    def backward(ctx, g1, g2, g3):
        return forward_backward(ctx, g1, g2, g3)


def _forward_autograd(keyset, x, weight, **kw):
    kw = {**_FORWARD_DEFAULTS, **kw}
    bias = kw.pop("bias", None)
    if not _needs_grad(x, weight, bias):
        return _below_autograd(_FORWARD_OP, keyset, x, weight, bias=bias, **kw)
    needs = tuple(t is not None and t.requires_grad for t in (x, weight, bias))
    act = kw["act_type"]
    user_y2, user_y3 = bool(kw["need_allgather_out"]), bool(kw["need_activation_feature"]) and act != 0
    run_kw = dict(kw)
    run_kw["need_allgather_out"] = user_y2 or needs[1]
    run_kw["need_activation_feature"] = user_y3 or act not in (Act.NONE, Act.RELU)
    y1, y2, y3 = _ForwardFn.apply(x, weight, bias, (keyset, run_kw, needs))
    return (y1, y2 if user_y2 else x.new_empty(EMPTY_OUTPUT_SHAPE),
            y3 if user_y3 else x.new_empty(EMPTY_OUTPUT_SHAPE))


# --- the adjoint op ----------------------------------------------------------------------------

def adjoint_setup_context(ctx, inputs, keyword_only_inputs, output, *, needs):
    """Save what the backward of npu_bmm_reducescatter_alltoall needs: x (for grad_weight), weight (for grad_x)."""
    x, weight = inputs
    kw = keyword_only_inputs
    bias = kw.get("bias")
    need_x, need_w, _ = needs
    ctx.kw = kw
    ctx.bias_meta = None if bias is None else (tuple(bias.shape), bias.dtype)
    ctx.w_dtype, ctx.w_transposed = weight.dtype, is_transposed_weight(weight)
    ctx.save_for_backward(x if need_w else None, weight)


def adjoint_backward(ctx, g):
    x, weight = ctx.saved_tensors
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    if g is None:
        return None, None, None, None
    kw = ctx.kw
    want_y2 = bool(need_w or (need_b and ctx.bias_meta is not None))
    y1, y2, _ = torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
        g.contiguous(), weight.transpose(1, 2), group_ep=kw["group_ep"], group_ep_worldsize=kw["group_ep_worldsize"],
        group_tp=kw["group_tp"], group_tp_worldsize=kw["group_tp_worldsize"], shard_type=kw["shard_type"],
        act_type=0, need_allgather_out=want_y2)
    grad_x = y1 if need_x else None
    grad_w = _grad_weight(x, y2, ctx.w_dtype, ctx.w_transposed) if need_w else None
    grad_b = None
    if need_b and ctx.bias_meta is not None:
        from .runtime.groups import resolve

        tp = kw["group_tp_worldsize"]
        t = dist.get_rank(resolve(ADJOINT_OP_NAME, "group_tp", kw["group_tp"], tp))
        El, rows, H = y2.shape
        ep = kw["group_ep_worldsize"]
        if kw["shard_type"] == 1:  # bias_(i,t) fed rows j*C + t*Ct + c of every j
            part = y2.view(El, ep, tp, rows // (ep * tp), H)[:, :, t]
        else:  # ... and columns t*Ht + k of rows j*C + c
            part = y2.view(El, rows, tp, H // tp)[:, :, t]
        shape, dtype = ctx.bias_meta
        grad_b = part.float().reshape(El, -1, part.shape[-1]).sum(1).reshape(shape).to(dtype)
    return grad_x, grad_w, grad_b, None


class _AdjointFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, meta):
        keyset, kw, needs = meta
        out = _below_autograd(_ADJOINT_OP, keyset, x, weight, bias=bias, **kw)
        adjoint_setup_context(ctx, (x, weight), dict(kw, bias=bias), out, needs=needs)
        ctx.set_materialize_grads(False)
        return out

    @staticmethod
    def backward(ctx, g):
        return adjoint_backward(ctx, g)


def _adjoint_autograd(keyset, x, weight, **kw):
    kw = {"shard_type": 0, **kw}
    bias = kw.pop("bias", None)
    if not _needs_grad(x, weight, bias):
        return _below_autograd(_ADJOINT_OP, keyset, x, weight, bias=bias, **kw)
    needs = tuple(t is not None and t.requires_grad for t in (x, weight, bias))
    return _AdjointFn.apply(x, weight, bias, (keyset, kw, needs))


_FORWARD_OP = getattr(torch.ops.moe_mc2, OP_NAME).default
_ADJOINT_OP = getattr(torch.ops.moe_mc2, ADJOINT_OP_NAME).default
_lib.impl(OP_NAME, _forward_autograd, "Autograd", with_keyset=True)
_lib.impl(ADJOINT_OP_NAME, _adjoint_autograd, "Autograd", with_keyset=True)
