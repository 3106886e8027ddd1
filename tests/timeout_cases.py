"""Rank functions for tests/test_timeouts.py (module-level: ranks import them)."""
from __future__ import annotations

import time

import torch


def group_timeouts(ctx, explicit):
    """The collective timeouts of this rank's groups: the world's by default, `explicit` when given."""
    from moe_mc2.launch import build_ep_tp_groups

    def seconds(pg):
        return pg._get_backend(torch.device("cpu")).options._timeout.total_seconds()

    ep_g, tp_g = build_ep_tp_groups(ctx.ep, ctx.tp, timeout=explicit)
    return seconds(ctx.ep_group), seconds(ctx.tp_group), seconds(ep_g), seconds(tp_g)


def one_rank_passes_none(ctx, bad):
    """Rank `bad` passes group_ep=None (it cannot reach its peers); the others wait for it."""
    import moe_mc2

    x = torch.ones(4, 3, 8)
    t0 = time.perf_counter()
    try:
        moe_mc2.npu_alltoall_allgather_bmm(
            x, torch.ones(2, 8, 4), group_ep=None if ctx.rank == bad else ctx.ep_group, group_ep_worldsize=ctx.ep,
            group_tp=ctx.tp_group, group_tp_worldsize=ctx.tp, shard_type=1)
        return None, None, "", time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, getattr(exc, "rule_id", None), str(exc), time.perf_counter() - t0


def fail_or_hang(ctx, bad, seconds):
    if ctx.rank == bad:
        raise ValueError(f"rank {bad} fails on purpose")
    time.sleep(seconds)  # stands for a peer stuck in a collective the failed rank never joins
    return "late"
