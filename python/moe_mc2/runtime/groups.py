"""From the op's group arguments to ProcessGroups, with SPEC's checks on them."""
from __future__ import annotations

import torch.distributed as dist
from torch.distributed import distributed_c10d as c10d

from ..contract.errors import ContractValueError


def group_name(group) -> str:
    """A ProcessGroup's name, or the name itself."""
    if isinstance(group, dist.ProcessGroup):
        return group.group_name
    return group


def resolve(op: str, arg: str, name: str, size: int):
    """The ProcessGroup called `name`, checked to have `size` ranks, with this rank in it."""
    if not dist.is_initialized():
        raise ContractValueError(op, arg, name, "group.exists",
                                 "torch.distributed is not initialized; call init_process_group first")
    try:
        group = c10d._resolve_process_group(name)
    except Exception:  # unknown names raise various errors across versions
        group = None
    if group is None:
        raise ContractValueError(op, arg, name, "group.exists",
                                 "must name an existing ProcessGroup (ProcessGroup.group_name)")
    real = dist.get_world_size(group)
    if real != size:
        raise ContractValueError(op, arg, name, "group.size",
                                 f"the group has {real} ranks, but {arg}_worldsize = {size}")
    if dist.get_rank(group) < 0:
        raise ContractValueError(op, arg, name, "group.member", "this rank is not a member of the group")
    return group


def backend_name(group) -> str:
    """"gloo", "nccl" or "hccl": the backend family the cost models know (a mixed "cpu:gloo,cuda:nccl"
    group counts as nccl)."""
    try:
        name = str(dist.get_backend(group)).lower()
    except Exception:
        name = "gloo"
    return "nccl" if "nccl" in name else ("hccl" if "hccl" in name else "gloo")
