"""From the op's group arguments to ProcessGroups and HCCL communicator names.

A group argument reaches the op in one of three forms, the ones the ecosystem passes:
  - a `ProcessGroup` (turned into its c10d `group_name` by the Python entry points, since the
    op schema carries strings),
  - a c10d group name (`ProcessGroup.group_name`),
  - an HCCL communicator name (`pg._get_backend(torch.device("npu")).get_hccl_comm_name(rank)`),
    what the seed's example, MindSpeed and torch_npu's own MC2 ops pass.
The portable runtime needs the ProcessGroup (`resolve`); GE and aclnn need the communicator name
(`comm_name`).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed import distributed_c10d as c10d

from ..contract.errors import ContractTypeError, ContractValueError

_ACCEPTED = "a ProcessGroup, its group_name, or the HCCL communicator name of one"


def group_name(group) -> str:
    """A ProcessGroup's c10d name; anything else unchanged (the contract checks its type)."""
    if isinstance(group, dist.ProcessGroup):
        return group.group_name
    return group


def check_arg(op: str, arg: str, group) -> str:
    """The name a group argument stands for; a TypeError (rule group.name) for anything but a
    ProcessGroup or a str (None included)."""
    if isinstance(group, dist.ProcessGroup):
        return group.group_name
    if not isinstance(group, str):
        shown = group if group is None or isinstance(group, (bool, int, float)) else type(group).__name__
        raise ContractTypeError(op, arg, shown, "group.name", f"must be {_ACCEPTED}")
    return group


def find(group):
    """The ProcessGroup a group argument (ProcessGroup or name) stands for, when this rank is a
    member of it; None otherwise (never raises: used to join the agreement of a failing call)."""
    try:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        pg = group if isinstance(group, dist.ProcessGroup) else None
        if pg is None and isinstance(group, str) and group:
            pg = _by_c10d_name(group) or _by_comm_name(group)
        if pg is None or dist.get_rank(pg) < 0:
            return None
        return pg
    except Exception:  # a destroyed group, a half-initialized world: cannot take part
        return None


def _by_c10d_name(name: str):
    try:
        return c10d._resolve_process_group(name)
    except Exception:  # unknown names raise various errors across versions
        return None


def _npu_device():
    """torch.device("npu"); raises where torch_npu has not registered the device (tests fake it)."""
    return torch.device("npu")


def _hccl_comm_name(group) -> str | None:
    """The group's HCCL communicator name on this rank; None where the group has no HCCL backend."""
    try:
        backend = group._get_backend(_npu_device())
        return backend.get_hccl_comm_name(dist.get_rank())
    except Exception:  # no NPU backend (CPU, CUDA, torch_npu absent)
        return None


_COMM_CACHE: dict = {}


def _by_comm_name(name: str):
    """The registered ProcessGroup whose HCCL communicator is called `name` (asks every group
    once; the answer is remembered while the group stays registered)."""
    registered = getattr(c10d._world, "pg_names", {})
    group = _COMM_CACHE.get(name)
    if group is not None and group in registered:
        return group
    for group in list(registered):
        if dist.get_rank(group) >= 0 and _hccl_comm_name(group) == name:
            _COMM_CACHE[name] = group
            return group
    return None


def resolve(op: str, arg: str, name: str, size: int):
    """The ProcessGroup `name` stands for, checked to have `size` ranks, with this rank in it."""
    if not dist.is_initialized():
        raise ContractValueError(op, arg, name, "group.exists",
                                 "torch.distributed is not initialized; call init_process_group first")
    group = _by_c10d_name(name)
    if group is None:
        group = _by_comm_name(name)
    if group is None:
        raise ContractValueError(op, arg, name, "group.exists",
                                 f"must name an existing group: {_ACCEPTED} (no registered group matches)")
    real = dist.get_world_size(group)
    if real != size:
        raise ContractValueError(op, arg, name, "group.size",
                                 f"the group has {real} ranks, but {arg}_worldsize = {size}")
    if dist.get_rank(group) < 0:
        raise ContractValueError(op, arg, name, "group.member", "this rank is not a member of the group")
    return group


def comm_name(name: str) -> str:
    """The HCCL communicator name GE and aclnn take for a group argument.

    A c10d group name of a group with an HCCL backend becomes its communicator's name; any other
    string is passed through unchanged (it is a communicator name already, as the seed passes
    it, or a group GE resolves by that name).
    """
    if dist.is_available() and dist.is_initialized():
        group = _by_c10d_name(name)
        if group is not None:
            hccl = _hccl_comm_name(group)
            if hccl is not None:
                return hccl
    return name


def backend_name(group) -> str:
    """"gloo", "nccl" or "hccl": the backend family the cost models know (a mixed "cpu:gloo,cuda:nccl"
    group counts as nccl)."""
    try:
        name = str(dist.get_backend(group)).lower()
    except Exception:
        name = "gloo"
    return "nccl" if "nccl" in name else ("hccl" if "hccl" in name else "gloo")
