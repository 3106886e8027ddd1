"""Pure expert-parallel (tp = 1) and pure tensor-parallel (ep = 1) layers inside a 2 x 2 world.

Every rank creates single-rank groups (collectively, once); a rank then calls the op with its
real ep group and a single-rank tp group (two independent ep = 2, tp = 1 layers, one per t), its
single-rank ep group and its real tp group (ep = 1, tp = 2, one per i), or two single-rank groups.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.distributed as dist

from forward_cases import run_cases

_SINGLES: list = []


def _singles(ctx):
    if not _SINGLES:
        for _ in range(2):
            for r in range(ctx.world_size):
                g = dist.new_group([r])
                if r == ctx.rank:
                    _SINGLES.append(g)
    return _SINGLES


def layout(ctx, name):
    """A context for one layout: ep, tp, this rank's index in it, and the two groups."""
    one, other = _singles(ctx)
    if name == "tp=1":
        return SimpleNamespace(ep=ctx.ep, tp=1, rank=ctx.i, group_ep=ctx.ep_group, tp_group=one)
    if name == "ep=1":
        return SimpleNamespace(ep=1, tp=ctx.tp, rank=ctx.t, group_ep=one, tp_group=ctx.tp_group)
    return SimpleNamespace(ep=1, tp=1, rank=0, group_ep=one, tp_group=other)


def run_layout_cases(ctx, name, cases):
    return run_cases(layout(ctx, name), cases)


def run_layout_adjoint(ctx, name, seed):
    """The adjoint op in a layout: (this rank's out, every sub-world rank's inputs)."""
    import moe_mc2

    lay = layout(ctx, name)
    g = torch.Generator().manual_seed(seed)
    El, C, N, H = 2, 4, 6, 8
    inputs = [(torch.randn(El, lay.ep * C, N, generator=g), torch.randn(El, N, H, generator=g))
              for _ in range(lay.ep * lay.tp)]
    x, w = inputs[lay.rank]
    out = moe_mc2.npu_bmm_reducescatter_alltoall(x, w, group_ep=lay.group_ep, group_ep_worldsize=lay.ep,
                                                 group_tp=lay.tp_group, group_tp_worldsize=lay.tp, shard_type=1)
    return out, inputs, lay.rank, lay.ep, lay.tp
