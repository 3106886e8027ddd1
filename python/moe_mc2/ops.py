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

    `group_ep`/`group_tp` are ProcessGroups, their c10d `group_name`s, or HCCL communicator
    names; `act_type` is a name (None/GELU/Silu/Relu/FastGELU, any case) or its int 0-4. `weight`
    is logically (El, H, M/tp); `w.transpose(1, 2)` of a contiguous (El, M/tp, H) tensor is taken
    as it is. Outputs not asked for are empty tensors. Every rank checks its own call, then the
    ranks agree on it before any data moves: a bad or differing call raises on every rank.
    Semantics and rules: docs/contract.md.
    """
    args = normalize_call(OP_NAME, x, weight, bias, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                          shard_type, act_type=act_type, need_allgather_out=need_allgather_out,
                          need_activation_feature=need_activation_feature)
    return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(x, weight, bias=bias, **args)


def normalize_call(op, x, weight, bias, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize, shard_type,
                   **forward_only) -> dict:
    """The schema's keyword arguments from the Python entry point's, with every Python type
    checked first (the schema would silently turn True into 1 and "False" into True).

    A rank whose arguments fail here still takes part in the agreement with its peers (they are
    already waiting in it), so every rank raises the same error."""
    from .contract.activations import parse_act_type
    from .contract.errors import ContractViolation
    from .contract.rules import Checker, check_flag, check_tensor_args
    from .runtime import agreement, groups

    try:
        check_tensor_args(op, x, weight, bias)
        chk = Checker(op)
        out = {}
        for arg, group, size_arg, size, rid in (("group_ep", group_ep, "group_ep_worldsize", group_ep_worldsize,
                                                 "ep.world_size"),
                                                ("group_tp", group_tp, "group_tp_worldsize", group_tp_worldsize,
                                                 "tp.world_size")):
            out[arg] = groups.check_arg(op, arg, group)
            chk.type(isinstance(size, int) and not isinstance(size, bool), size_arg, size, rid, "must be an int")
            out[size_arg] = size
        shard = 0 if shard_type is None else shard_type
        chk.type(isinstance(shard, int) and not isinstance(shard, bool), "shard_type", shard, "shard_type.value",
                 "must be the int 0 or 1")
        out["shard_type"] = shard
        if forward_only:
            out["act_type"] = parse_act_type(forward_only["act_type"], op=op)
            for flag in ("need_allgather_out", "need_activation_feature"):
                out[flag] = check_flag(op, flag, forward_only[flag])
    except ContractViolation as exc:
        agreement.reject(op, exc, group_ep, group_tp)
    return out
