"""The rules of the companion op `npu_bmm_reducescatter_alltoall` (the adjoint).

Per rank: x `(El, ep*C, M/tp)`, weight logically `(El, M/tp, H)`, bias `(El, Hb)` or
`(El, 1, Hb)` with `Hb = H` (shard_type 1) or `H/tp` (shard_type 0); out `(E, C/tp, H)`
(shard_type 1) or `(E, C, H/tp)` (shard_type 0). The rules shared with the forward op use the
forward's rule ids (ep.world_size, x.dtype, bias.shape, ...); the ones only the adjoint has are
listed in ADJOINT_ONLY_RULES. Checked in a fixed order, first broken rule reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .names import ADJOINT_OP_NAME
from .rules import E_MAX, E_MIN, Checker, check_tensor_args, operands

ADJOINT_ONLY_RULES = ("rows.multiple", "C.multiple", "H.multiple", "weight.inner")


@dataclass(frozen=True)
class AdjointShapes:
    """Sizes of one valid adjoint call, per rank."""

    ep: int
    tp: int
    shard_type: int
    E: int
    El: int
    C: int  # rows per ep peer and local expert in x (x.size(1) = ep * C)
    H: int  # weight.size(2): the full hidden size before the reduce-scatter
    N: int  # M / tp: x.size(2) = weight.size(1)

    @property
    def out_rows(self) -> int:  # C/tp (shard 1) or C (shard 0)
        return self.C // self.tp if self.shard_type == 1 else self.C

    @property
    def out_cols(self) -> int:  # H (shard 1) or H/tp (shard 0)
        return self.H if self.shard_type == 1 else self.H // self.tp

    @property
    def out(self) -> tuple:
        return (self.E, self.out_rows, self.out_cols)

    @property
    def bias_cols(self) -> int:
        return self.out_cols


def check_adjoint(
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
    portable: bool = True,
    op: str = ADJOINT_OP_NAME,
    resolve=None,
) -> AdjointShapes:
    """Validate one adjoint call (weight in its logical (El, M/tp, H) shape); return its sizes."""
    chk = Checker(op)
    chk.shard_type(shard_type, "0 (scatter along H) or 1 (scatter along C)")
    chk.operands(ep, tp, group_ep, group_tp, x_shape, x_dtype, weight_shape, weight_dtype, portable, resolve)

    El, rows, N = x_shape
    E = El * ep
    chk.value(E_MIN <= E <= E_MAX, "x", tuple(x_shape), "E.range",
              f"x.size(0) * ep (E) = {El} * {ep} = {E} must be in [{E_MIN}, {E_MAX}]")
    chk.value(weight_shape[0] == El, "weight", tuple(weight_shape), "weight.experts",
              f"weight.size(0) must equal x.size(0) (El): {weight_shape[0]} != {El}")
    chk.value(rows > 0, "x", tuple(x_shape), "C.positive", "x.size(1) (ep * C) must be > 0")
    chk.value(rows % ep == 0, "x", tuple(x_shape), "rows.multiple",
              f"x.size(1) (ep * C) = {rows} must be a multiple of ep = {ep}")
    C = rows // ep
    if shard_type == 1:
        chk.value(C % tp == 0, "x", tuple(x_shape), "C.multiple",
                  f"C = x.size(1) / ep = {C} must be a multiple of tp = {tp} (shard_type=1 scatters along C)")
    chk.dim_range("x", N, "N.range", f"x.size(2) (M/tp) = {N}")
    chk.value(weight_shape[1] == N, "weight", tuple(weight_shape), "weight.inner",
              f"weight.size(1) must equal x.size(2) (M/tp) = {N}")
    H = weight_shape[2]
    chk.dim_range("weight", H, "H.range", f"weight.size(2) (H) = {H}")
    if shard_type == 0:
        chk.value(H % tp == 0, "weight", tuple(weight_shape), "H.multiple",
                  f"weight.size(2) (H) = {H} must be a multiple of tp = {tp} (shard_type=0 scatters along H)")
    hb = H if shard_type == 1 else H // tp
    chk.bias(bias_shape, bias_dtype, El, hb, "H" if shard_type == 1 else "H/tp", x_dtype)
    return AdjointShapes(ep=ep, tp=tp, shard_type=shard_type, E=E, El=El, C=C, H=H, N=N)



def check_adjoint_tensors(x, weight, bias, group_ep, ep, group_tp, tp, shard_type, *, portable=None, resolve=None):
    """check_adjoint on real or fake tensors (portable=None: the NPU's rules for NPU tensors)."""
    check_tensor_args(ADJOINT_OP_NAME, x, weight, bias)
    if portable is None:
        portable = x.device.type != "npu"
    return check_adjoint(*operands(x, weight, bias), group_ep=group_ep, ep=ep, group_tp=group_tp, tp=tp,
                         shard_type=shard_type, portable=portable, resolve=resolve)
