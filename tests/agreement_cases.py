"""Calls that differ on one rank only, run on every rank of a world (module-level: ranks import it).

Each case perturbs one thing on one rank (`bad`): a shape, a dtype, an attribute, a flag, a
setting, the groups, or an argument that is invalid there only. Every rank must raise, the
same error on every rank, and the world must take the next call.
"""
from __future__ import annotations

import contextlib
import os
import time

import torch

import moe_mc2
from moe_mc2.runtime.forward import forced_tiles

BF, F32 = torch.bfloat16, torch.float32


def base(ctx):
    """A valid call (x, weight, kwargs) on a 2 x 2 world: E=4, C=6, H=8, N=6, shard_type 1."""
    g = torch.Generator().manual_seed(5 + ctx.rank)
    x = torch.randn(4, 3, 8, generator=g).to(BF)
    w = torch.randn(2, 8, 6, generator=g).to(BF)
    kw = dict(bias=torch.randn(2, 1, 6, generator=g), group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep,
              group_tp=ctx.tp_group, group_tp_worldsize=ctx.tp, shard_type=1, act_type="gelu",
              need_allgather_out=True, need_activation_feature=False)
    return x, w, kw


@contextlib.contextmanager
def env(name, value):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def _swap(kw):
    return dict(kw, group_ep=kw["group_tp"], group_tp=kw["group_ep"])


# name -> (perturbation(x, w, kw) -> (x, w, kw, context manager), expected rule id, text the message names)
PERTURB = {
    "C": (lambda x, w, kw: (torch.zeros(4, 4, 8, dtype=BF), w, kw, None), "ranks.agree", "x.shape"),
    "E": (lambda x, w, kw: (torch.zeros(6, 3, 8, dtype=BF), torch.zeros(3, 8, 6, dtype=BF),
                            dict(kw, bias=torch.zeros(3, 1, 6)), None), "ranks.agree", "x.shape"),
    "dtype": (lambda x, w, kw: (x.float(), w.float(), kw, None), "ranks.agree", "x.dtype"),
    "shard_type, same element count": (lambda x, w, kw: (torch.zeros(4, 6, 4, dtype=BF), w, dict(kw, shard_type=0),
                                                         None), "ranks.agree", "shard_type"),
    "act_type": (lambda x, w, kw: (x, w, dict(kw, act_type="relu"), None), "ranks.agree", "act_type"),
    "need_allgather_out": (lambda x, w, kw: (x, w, dict(kw, need_allgather_out=False), None), "ranks.agree",
                           "need_allgather_out"),
    "need_activation_feature": (lambda x, w, kw: (x, w, dict(kw, need_activation_feature=True), None),
                                "ranks.agree", "need_activation_feature"),
    "bias left out": (lambda x, w, kw: (x, w, dict(kw, bias=None), None), "ranks.agree", "bias"),
    "N": (lambda x, w, kw: (x, torch.zeros(2, 8, 7, dtype=BF), dict(kw, bias=torch.zeros(2, 7)), None),
          "ranks.agree", "weight.shape"),
    "MOE_MC2_TILES": (lambda x, w, kw: (x, w, kw, env("MOE_MC2_TILES", "2")), "ranks.agree", "MOE_MC2_TILES"),
    "MOE_MC2_EXPERT_TILES": (lambda x, w, kw: (x, w, kw, env("MOE_MC2_EXPERT_TILES", "2")), "ranks.agree",
                             "MOE_MC2_EXPERT_TILES"),
    "forced_tiles": (lambda x, w, kw: (x, w, kw, forced_tiles(3)), "ranks.agree", "forced_tiles"),
    # invalid on one rank only: every rank raises that rank's error
    "C = 0": (lambda x, w, kw: (torch.zeros(4, 0, 8, dtype=BF), w, kw, None), "C.positive", "x=(4, 0, 8)"),
    "wrong group_ep_worldsize": (lambda x, w, kw: (x, w, dict(kw, group_ep_worldsize=4), None), "group.size",
                                 "group_ep"),
    "need_allgather_out='False'": (lambda x, w, kw: (x, w, dict(kw, need_allgather_out="False"), None),
                                   "flag.type", "need_allgather_out"),
    "act_type=True": (lambda x, w, kw: (x, w, dict(kw, act_type=True), None), "act_type.value", "act_type=True"),
    "shard_type=True": (lambda x, w, kw: (x, w, dict(kw, shard_type=True), None), "shard_type.value",
                        "shard_type=True"),
    "x a list": (lambda x, w, kw: (x.tolist(), w, kw, None), "x.type", "x='list'"),
    "weight None": (lambda x, w, kw: (x, None, kw, None), "weight.type", "weight=None"),
    "meta weight": (lambda x, w, kw: (x, w.to("meta"), kw, None), "weight.device", "weight='meta'"),
    "bias dtype": (lambda x, w, kw: (x, w, dict(kw, bias=kw["bias"].to(BF)), None), "bias.dtype", "bias"),
    "MOE_MC2_TILES=abc": (lambda x, w, kw: (x, w, kw, env("MOE_MC2_TILES", "abc")), "env.value", "MOE_MC2_TILES"),
    "MOE_MC2_EXPERT_TILES=-1": (lambda x, w, kw: (x, w, kw, env("MOE_MC2_EXPERT_TILES", "-1")), "env.value",
                                "MOE_MC2_EXPERT_TILES"),
    "MOE_MC2_AGREEMENT=maybe": (lambda x, w, kw: (x, w, kw, env("MOE_MC2_AGREEMENT", "maybe")), "env.value",
                                "MOE_MC2_AGREEMENT"),
}


def run_one_rank_mismatches(ctx, names):
    """For each (case name, bad rank): this rank's outcome (exception class, rule id, message,
    seconds), then one valid call (y1 back, to check the world still works)."""
    out = []
    for name, bad in names:
        x, w, kw = base(ctx)
        cm = None
        if ctx.rank == bad:
            x, w, kw, cm = PERTURB[name][0](x, w, kw)
        t0 = time.perf_counter()
        try:
            with cm or contextlib.nullcontext():
                moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)
            out.append((name, bad, None, None, "", time.perf_counter() - t0))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out.append((name, bad, type(exc).__name__, getattr(exc, "rule_id", None), str(exc),
                        time.perf_counter() - t0))
    x, w, kw = base(ctx)
    y1, y2, _ = moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)
    return out, y1, y2


def run_swapped_groups(ctx, bad):
    """group_ep and group_tp swapped on one rank (both of size 2, so no local rule can see it)."""
    x, w, kw = base(ctx)
    if ctx.rank == bad:
        kw = _swap(kw)
    try:
        moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)
        result = (None, None, "")
    except Exception as exc:  # noqa: BLE001
        result = (type(exc).__name__, getattr(exc, "rule_id", None), str(exc))
    x, w, kw = base(ctx)
    moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)  # the world still works
    return result


def run_adjoint_mismatch(ctx, bad):
    """The adjoint op, x's rows differing on one rank."""
    rows = 8 if ctx.rank != bad else 12
    x = torch.ones(2, rows, 3)
    try:
        moe_mc2.npu_bmm_reducescatter_alltoall(x, torch.ones(2, 3, 4), group_ep=ctx.ep_group, group_ep_worldsize=2,
                                               group_tp=ctx.tp_group, group_tp_worldsize=2, shard_type=1)
        return None, None, ""
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__, getattr(exc, "rule_id", None), str(exc)


def run_transposed_on_one_rank(ctx, bad):
    """A different weight layout is not a different call: no error."""
    x, w, kw = base(ctx)
    if ctx.rank == bad:
        w = w.transpose(1, 2).contiguous().transpose(1, 2)
    return moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)[0]
