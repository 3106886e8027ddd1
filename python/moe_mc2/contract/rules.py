"""The forward op's input rules (docs/contract.md, "Rules") and the shapes they imply.

`check_forward` works on shapes and dtypes only (plain ints or SymInts), so the same code
validates eager calls on every rank, runs inside the fake kernel, and is checked against the
C++ validator through tests/vectors. Rules are checked in a fixed order; the first broken one
is reported, with the rule id shared with op_host/core. `check_forward_tensors` adds the rules
only tensors have (Python types, devices) in front of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .errors import ContractTypeError, ContractValueError
from .names import OP_NAME

WORLD_SIZES = (2, 4, 8, 16)  # CANN's kernel (the NPU and GE path)
PORTABLE_WORLD_SIZES = (1,) + WORLD_SIZES  # the portable runtime also runs pure ep or pure tp layers
E_MIN, E_MAX = 2, 2048
DIM_MIN, DIM_MAX = 1, 65535  # H and M/tp
GROUP_NAME_MAX = 127  # "shorter than 128 characters"
# An output the call does not produce: 3-D like the real one, no elements (CANN's infershape and
# the ecosystem's meta kernels declare it [0, 0, 0]).
EMPTY_OUTPUT_SHAPE = (0, 0, 0)

NPU_DTYPES = (torch.float16, torch.bfloat16)
PORTABLE_DTYPES = NPU_DTYPES + (torch.float32,)

_DTYPE_NAMES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32"}


def dtype_name(dtype) -> str:
    return _DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def bias_dtype_for(x_dtype: torch.dtype) -> torch.dtype:
    """float16 bias for float16 x; float32 bias for bfloat16 (and float32) x."""
    return torch.float16 if x_dtype == torch.float16 else torch.float32


@dataclass(frozen=True)
class ForwardShapes:
    """Sizes of one valid call, per rank."""

    ep: int
    tp: int
    shard_type: int
    E: int
    El: int
    C: int  # rows each ep peer contributes per local expert (after the tp gather)
    H: int
    N: int  # M / tp
    x_rows: int  # x.size(1): C/tp (shard 1) or C (shard 0)
    x_cols: int  # x.size(2): H (shard 1) or H/tp (shard 0)

    @property
    def rows(self) -> int:
        return self.ep * self.C

    @property
    def y1(self) -> tuple:
        return (self.El, self.rows, self.N)

    @property
    def y2(self) -> tuple:
        return (self.El, self.rows, self.H)


class Checker:
    """Raises the op's errors; shared by the forward and adjoint rule sets."""

    def __init__(self, op: str):
        self.op = op

    def value(self, ok, arg, value, rule_id, rule):
        if not ok:
            raise ContractValueError(self.op, arg, value, rule_id, rule)

    def type(self, ok, arg, value, rule_id, rule):
        if not ok:
            raise ContractTypeError(self.op, arg, value, rule_id, rule)

    def shard_type(self, value, meaning):
        self.value(value in (0, 1) and not isinstance(value, bool), "shard_type", value, "shard_type.value",
                   f"must be {meaning}")

    def operands(self, ep, tp, group_ep, group_tp, x_shape, x_dtype, weight_shape, weight_dtype, portable,
                 resolve=None):
        """The rules both ops share, in their order: world sizes, groups, ranks and dtypes.

        `resolve()`, when given, checks the groups themselves (group.exists, group.size,
        group.member) right after their names, before any shape rule can blame a wrong size."""
        self.world_sizes(ep, tp, portable)
        self.groups(group_ep, group_tp)
        if resolve is not None:
            resolve()
        self.rank3("x", x_shape)
        self.x_dtype(x_dtype, portable)
        self.rank3("weight", weight_shape)
        self.weight_dtype(weight_dtype, x_dtype)

    def world_sizes(self, ep, tp, portable=True):
        allowed = PORTABLE_WORLD_SIZES if portable else WORLD_SIZES
        where = ("(1 runs a pure tensor- or expert-parallel layer on the portable runtime)" if portable
                 else "on the NPU and in graph mode (CANN's kernel); only the portable runtime also takes 1")
        for arg, rid, size in (("group_ep_worldsize", "ep.world_size", ep), ("group_tp_worldsize", "tp.world_size", tp)):
            self.type(isinstance(size, int) and not isinstance(size, bool), arg, size, rid, "must be an int")
            self.value(size in allowed, arg, size, rid, f"must be one of {allowed} {where}")

    def groups(self, group_ep, group_tp):
        for arg, name in (("group_ep", group_ep), ("group_tp", group_tp)):
            self.type(isinstance(name, str), arg, name, "group.name", "must be a group name (str) or a ProcessGroup")
            self.value(0 < len(name) <= GROUP_NAME_MAX, arg, name, "group.name",
                       f"must be non-empty and shorter than {GROUP_NAME_MAX + 1} characters")
        self.value(group_ep != group_tp, "group_tp", group_tp, "group.distinct", "must differ from group_ep")

    def rank3(self, arg, shape):
        self.value(len(shape) == 3, arg, tuple(shape), f"{arg}.rank", "must be 3-D")

    def x_dtype(self, dtype, portable):
        allowed = PORTABLE_DTYPES if portable else NPU_DTYPES
        names = "/".join(dtype_name(d) for d in allowed)
        where = "" if portable else " on the NPU"
        self.type(dtype in allowed, "x", dtype_name(dtype), "x.dtype", f"must be {names}{where}")

    def weight_dtype(self, dtype, x_dtype):
        self.type(dtype == x_dtype, "weight", dtype_name(dtype), "weight.dtype",
                  f"must equal x's dtype ({dtype_name(x_dtype)})")

    def dim_range(self, arg, value, rule_id, what):
        self.value(DIM_MIN <= value <= DIM_MAX, arg, value, rule_id, f"{what} must be in [{DIM_MIN}, {DIM_MAX}]")

    def bias(self, shape, dtype, El, n, n_name, x_dtype):
        if shape is None:
            return
        self.value(len(shape) in (2, 3), "bias", tuple(shape), "bias.rank", "must be 2-D or 3-D")
        ok = tuple(shape) == (El, n) or tuple(shape) == (El, 1, n)
        self.value(ok, "bias", tuple(shape), "bias.shape", f"must be (El, {n_name}) = ({El}, {n}) or (El, 1, {n_name}) = ({El}, 1, {n})")
        self.bias_dtype(dtype, x_dtype)

    def bias_dtype(self, dtype, x_dtype):
        want = bias_dtype_for(x_dtype)
        self.type(dtype == want, "bias", dtype_name(dtype), "bias.dtype",
                  f"must be {dtype_name(want)} when x is {dtype_name(x_dtype)}")


def check_forward(
    x_shape: Sequence,
    x_dtype: torch.dtype,
    weight_shape: Sequence,
    weight_dtype: torch.dtype,
    bias_shape: Optional[Sequence],
    bias_dtype: Optional[torch.dtype],
    *,
    group_ep: str,
    ep: int,
    group_tp: str,
    tp: int,
    shard_type: int,
    act_type: int,
    portable: bool = True,
    op: str = OP_NAME,
    resolve=None,
) -> ForwardShapes:
    """Validate one call (weight in its logical (El, H, M/tp) shape); return its sizes.

    `portable=False` applies the NPU's rules (no float32 x, no world size 1); `resolve()` checks
    the groups right after their names (see Checker.operands)."""
    chk = Checker(op)
    chk.shard_type(shard_type, "0 (gather along H) or 1 (gather along C)")
    chk.value(act_type in (0, 1, 2, 3, 4) and not isinstance(act_type, bool), "act_type", act_type,
              "act_type.value", "must be 0-4 (None, GELU, Silu, Relu, FastGELU)")
    chk.operands(ep, tp, group_ep, group_tp, x_shape, x_dtype, weight_shape, weight_dtype, portable, resolve)

    E, x_rows, x_cols = x_shape
    chk.value(E_MIN <= E <= E_MAX, "x", tuple(x_shape), "E.range", f"x.size(0) (E) = {E} must be in [{E_MIN}, {E_MAX}]")
    chk.value(E % ep == 0, "x", tuple(x_shape), "E.multiple", f"x.size(0) (E) = {E} must be a multiple of ep = {ep}")
    El = E // ep
    chk.value(weight_shape[0] == El, "weight", tuple(weight_shape), "weight.experts",
              f"weight.size(0) * ep must equal E: {weight_shape[0]} * {ep} != {E}")
    H = x_cols if shard_type == 1 else x_cols * tp
    h_src = "x.size(2)" if shard_type == 1 else f"x.size(2) * tp = {x_cols} * {tp}"
    chk.dim_range("x", H, "H.range", f"H ({h_src}) = {H}")
    chk.value(weight_shape[1] == H, "weight", tuple(weight_shape), "weight.hidden",
              f"weight.size(1) must equal H = {H} (from {h_src}, shard_type={shard_type})")
    N = weight_shape[2]
    chk.dim_range("weight", N, "N.range", f"weight.size(2) (M/tp) = {N}")
    chk.value(x_rows > 0, "x", tuple(x_shape), "C.positive",
              f"x.size(1) ({'C/tp' if shard_type == 1 else 'C'}) must be > 0")
    chk.bias(bias_shape, bias_dtype, El, N, "M/tp", x_dtype)
    C = x_rows * tp if shard_type == 1 else x_rows
    return ForwardShapes(ep=ep, tp=tp, shard_type=shard_type, E=E, El=El, C=C, H=H, N=N, x_rows=x_rows, x_cols=x_cols)


def operands(x, weight, bias) -> tuple:
    """(x shape, x dtype, weight shape, weight dtype, bias shape, bias dtype) of real or fake tensors."""
    return (tuple(x.shape), x.dtype, tuple(weight.shape), weight.dtype,
            None if bias is None else tuple(bias.shape), None if bias is None else bias.dtype)


def check_tensor_args(op: str, x, weight, bias, *, weight_optional: bool = False) -> None:
    """The rules only Python objects have: x, weight and bias are tensors (weight may be None
    where `weight_optional`), and weight and bias live on x's device (meta included)."""
    chk = Checker(op)
    chk.type(isinstance(x, torch.Tensor), "x", _kind(x), "x.type", "must be a torch.Tensor")
    if not (weight is None and weight_optional):
        chk.type(isinstance(weight, torch.Tensor), "weight", _kind(weight), "weight.type", "must be a torch.Tensor")
    chk.type(bias is None or isinstance(bias, torch.Tensor), "bias", _kind(bias), "bias.type",
             "must be None or a torch.Tensor")
    for arg, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            chk.value(t.device == x.device, arg, str(t.device), f"{arg}.device",
                      f"must be on x's device ({x.device})")


def _kind(value):
    """What a wrong-typed argument is, for messages (never the whole object)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return type(value).__name__


def check_forward_tensors(x, weight, bias, group_ep, ep, group_tp, tp, shard_type, act_type, *, portable=None,
                          resolve=None):
    """check_forward on real or fake tensors (eager kernels, the fake kernel, the NPU kernel).

    portable=None decides by device: tensors on the NPU get the NPU's rules (the fake kernel of a
    graph that lowers to GE), any other device the portable runtime's."""
    check_tensor_args(OP_NAME, x, weight, bias)
    if portable is None:
        portable = x.device.type != "npu"
    return check_forward(*operands(x, weight, bias), group_ep=group_ep, ep=ep, group_tp=group_tp, tp=tp,
                         shard_type=shard_type, act_type=act_type, portable=portable, resolve=resolve)


def check_flag(op: str, arg: str, value) -> bool:
    """A bool flag argument (None reads as False); anything else, "False" or 1 included, is refused."""
    Checker(op).type(value is None or isinstance(value, bool), arg, _kind(value), "flag.type",
                     "must be True or False (None reads as False)")
    return bool(value)


def output_flags(need_allgather_out: bool, need_activation_feature: bool, act_type: int) -> tuple:
    """(y2 produced, y3 produced): y3 only with an activation."""
    return bool(need_allgather_out), bool(need_activation_feature) and act_type != 0


def is_transposed_weight(weight: torch.Tensor) -> bool:
    """True for w.transpose(1, 2) of a contiguous (El, M/tp, H) tensor (the NPU's transpose_weight)."""
    if weight.dim() != 3 or weight.is_contiguous():
        return False
    return weight.transpose(1, 2).is_contiguous()
