"""torch.library registration of `moe_mc2::npu_alltoall_allgather_bmm`: schema, fake, kernels.

The schema is the op's integer/str form (act_type as int, groups as names); the friendly
Python entry point `moe_mc2.npu_alltoall_allgather_bmm` normalises into it. Autograd is
registered in `autograd.py`, the NPU kernel in `integration/npu.py`, the torchair converter
in `integration/torchair.py`.
"""
from __future__ import annotations

from typing import Optional

import torch

from .contract import rules
from .contract.names import LIBRARY, OP_NAME

FORWARD_SCHEMA = (
    "(Tensor x, Tensor weight, *, Tensor? bias=None, str group_ep, int group_ep_worldsize, "
    "str group_tp, int group_tp_worldsize, int shard_type=0, int act_type=0, "
    "bool need_allgather_out=False, bool need_activation_feature=False) -> (Tensor, Tensor, Tensor)"
)
FORWARD_QUALNAME = f"{LIBRARY}::{OP_NAME}"

torch.library.define(FORWARD_QUALNAME, FORWARD_SCHEMA)


@torch.library.register_fake(FORWARD_QUALNAME)
def _forward_fake(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                  shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False):
    s = rules.check_forward_tensors(x, weight, bias, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                              shard_type, act_type)
    want_y2, want_y3 = rules.output_flags(need_allgather_out, need_activation_feature, act_type)
    y1 = x.new_empty(s.y1)
    y2 = x.new_empty(s.y2 if want_y2 else rules.EMPTY_OUTPUT_SHAPE)
    y3 = x.new_empty(s.y1 if want_y3 else rules.EMPTY_OUTPUT_SHAPE)
    return y1, y2, y3


@torch.library.impl(FORWARD_QUALNAME, ("cpu", "cuda"))
def _forward_portable(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                      shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False):
    from .runtime import forward

    return forward.run(x, weight, bias, group_ep=group_ep, ep=group_ep_worldsize, group_tp=group_tp,
                       tp=group_tp_worldsize, shard_type=shard_type, act_type=act_type,
                       need_allgather_out=need_allgather_out, need_activation_feature=need_activation_feature)


def npu_alltoall_allgather_bmm(
    x: torch.Tensor,
    weight: torch.Tensor,
    *,
    bias: Optional[torch.Tensor] = None,
    group_ep,
    group_ep_worldsize: int,
    group_tp,
    group_tp_worldsize: int,
    shard_type: Optional[int] = 0,
    act_type="None",
    need_allgather_out: Optional[bool] = False,
    need_activation_feature: Optional[bool] = False,
):
    """AllToAll over ep -> AllGather over tp -> bmm -> bias -> activation; returns (y1, y2, y3).

    `group_ep`/`group_tp` are ProcessGroups or their `group_name`s; `act_type` is a name
    (None/GELU/Silu/Relu/FastGELU, any case) or its int 0-4. `weight` is logically
    (E/ep, H, M/tp); `w.transpose(1, 2)` of a contiguous (E/ep, M/tp, H) tensor is taken as it
    is. Outputs not asked for are empty tensors. Semantics: SPEC.md.
    """
    from .contract.activations import parse_act_type
    from .runtime.groups import group_name

    return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
        x, weight, bias=bias,
        group_ep=group_name(group_ep), group_ep_worldsize=group_ep_worldsize,
        group_tp=group_name(group_tp), group_tp_worldsize=group_tp_worldsize,
        shard_type=0 if shard_type is None else shard_type,
        act_type=parse_act_type(act_type),
        need_allgather_out=bool(need_allgather_out),
        need_activation_feature=bool(need_activation_feature))
