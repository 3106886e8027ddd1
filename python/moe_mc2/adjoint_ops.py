"""torch.library registration of `moe_mc2::npu_bmm_reducescatter_alltoall`: schema, fake, kernels.

BatchMatMul -> ReduceScatter over tp -> bias -> AllToAll over ep (docs/contract.md, "The companion op").
It is the row-parallel second linear of an MoE MLP and, with bias=None, the gradient route of
`npu_alltoall_allgather_bmm` with respect to x. Autograd for both ops lives in `autograd.py`.
"""
from __future__ import annotations

from typing import Optional

import torch

from .contract import adjoint_rules
from .contract.names import ADJOINT_OP_NAME, LIBRARY

ADJOINT_SCHEMA = (
    "(Tensor x, Tensor weight, *, Tensor? bias=None, str group_ep, int group_ep_worldsize, "
    "str group_tp, int group_tp_worldsize, int shard_type=0) -> Tensor"
)
ADJOINT_QUALNAME = f"{LIBRARY}::{ADJOINT_OP_NAME}"

torch.library.define(ADJOINT_QUALNAME, ADJOINT_SCHEMA)


@torch.library.register_fake(ADJOINT_QUALNAME)
def _adjoint_fake(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize, shard_type=0):
    s = adjoint_rules.check_adjoint_tensors(x, weight, bias, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize, shard_type)
    return x.new_empty(s.out)


@torch.library.impl(ADJOINT_QUALNAME, ("cpu", "cuda"))
def _adjoint_portable(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                      shard_type=0):
    from .runtime import adjoint

    return adjoint.run(x, weight, bias, group_ep=group_ep, ep=group_ep_worldsize, group_tp=group_tp,
                       tp=group_tp_worldsize, shard_type=shard_type)


def npu_bmm_reducescatter_alltoall(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    bias: Optional[torch.Tensor] = None,
    group_ep,
    group_ep_worldsize: int,
    group_tp,
    group_tp_worldsize: int,
    shard_type: Optional[int] = 0,
) -> torch.Tensor:
    """bmm -> ReduceScatter over tp -> bias -> AllToAll over ep; returns `out`.

    x `(E/ep, ep*C, M/tp)`, weight logically `(E/ep, M/tp, H)` (any strides, e.g. the transpose
    of the forward op's weight), bias `(E/ep, Hb)` or `(E/ep, 1, Hb)`; out `(E, C/tp, H)` for
    shard_type 1, `(E, C, H/tp)` for shard_type 0 (Hb = H or H/tp likewise). `group_ep`/`group_tp`
    are ProcessGroups, their `group_name`s or HCCL communicator names. As for the forward op, the
    ranks agree on the call before any data moves. Semantics and rules: docs/contract.md.
    """
    from .ops import normalize_call

    args = normalize_call(ADJOINT_OP_NAME, x, weight, bias, group_ep, group_ep_worldsize, group_tp,
                          group_tp_worldsize, shard_type)
    return torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(x, weight, bias=bias, **args)
