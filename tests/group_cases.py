"""Group arguments in their three forms, with a fake HCCL backend (module-level: ranks import it).

A real NPU world hands each group an HCCL backend whose communicator has a name
(`pg._get_backend(torch.device("npu")).get_hccl_comm_name(rank)`), the string the seed, MindSpeed
and torch_npu pass as group_ep/group_tp. Here every ProcessGroup answers `_get_backend` for a
stand-in NPU device with a fake backend naming its communicator after the group, as HCCL names
one communicator alike on all its members.
"""
from __future__ import annotations

import contextlib
import zlib

import torch
import torch.distributed as dist

import moe_mc2
from moe_mc2.runtime import groups

FAKE_NPU = object()


class FakeHcclBackend:
    def __init__(self, group_name):
        self.group_name = group_name

    def get_hccl_comm_name(self, rank):
        return f"hcom_{zlib.crc32(self.group_name.encode()):08x}"


@contextlib.contextmanager
def fake_hccl():
    original = dist.ProcessGroup._get_backend
    old_device = groups._npu_device

    def _get_backend(self, device):
        if device is FAKE_NPU:
            return FakeHcclBackend(self.group_name)
        return original(self, device)

    dist.ProcessGroup._get_backend = _get_backend
    groups._npu_device = lambda: FAKE_NPU
    groups._COMM_CACHE.clear()
    try:
        yield
    finally:
        dist.ProcessGroup._get_backend = original
        groups._npu_device = old_device
        groups._COMM_CACHE.clear()


def _forward(x, w, group_ep, group_tp, ep, tp):
    return moe_mc2.npu_alltoall_allgather_bmm(x, w, group_ep=group_ep, group_ep_worldsize=ep, group_tp=group_tp,
                                              group_tp_worldsize=tp, shard_type=1, act_type="silu",
                                              need_allgather_out=True)


def run_three_forms(ctx):
    """y1/y2 of the forward op and out of the adjoint with ProcessGroups, c10d names and HCCL
    communicator names; the names the fake backends gave; what an unknown name raises."""
    g = torch.Generator().manual_seed(ctx.rank)
    x, w = torch.randn(4, 3, 8, generator=g), torch.randn(2, 8, 5, generator=g)
    xa, wa = torch.randn(2, ctx.ep * 4, 3, generator=g), torch.randn(2, 3, 6, generator=g)
    out = {}
    with fake_hccl():
        comm_ep, comm_tp = groups.comm_name(ctx.group_ep), groups.comm_name(ctx.group_tp)
        out["comm"] = (comm_ep, comm_tp)
        forms = {"pg": (ctx.ep_group, ctx.tp_group), "c10d": (ctx.group_ep, ctx.group_tp), "hccl": (comm_ep, comm_tp)}
        for form, (ge, gt) in forms.items():
            y1, y2, _ = _forward(x, w, ge, gt, ctx.ep, ctx.tp)
            adj = moe_mc2.npu_bmm_reducescatter_alltoall(xa, wa, group_ep=ge, group_ep_worldsize=ctx.ep,
                                                         group_tp=gt, group_tp_worldsize=ctx.tp, shard_type=1)
            out[form] = (y1, y2, adj)
        out["resolved"] = (groups.resolve("op", "group_ep", comm_ep, ctx.ep) is ctx.ep_group,
                           groups.resolve("op", "group_tp", comm_tp, ctx.tp) is ctx.tp_group)
        try:
            _forward(x, w, "hcom_00000000", comm_tp, ctx.ep, ctx.tp)
            out["unknown"] = None
        except Exception as exc:  # noqa: BLE001
            out["unknown"] = (type(exc).__name__, getattr(exc, "rule_id", None), getattr(exc, "arg", None))
    # without an HCCL backend (CPU), a communicator name names nothing
    try:
        groups.resolve("op", "group_ep", comm_ep, ctx.ep)
        out["cpu"] = None
    except Exception as exc:  # noqa: BLE001
        out["cpu"] = (type(exc).__name__, exc.rule_id, exc.arg)
    return out
