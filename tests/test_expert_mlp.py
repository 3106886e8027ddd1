"""ExpertMLP on local ranks trains like the single-process dense model (examples/train_expert_mlp.py)."""
from __future__ import annotations

import dataclasses
import os
import sys

import torch

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _example():
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import train_expert_mlp

    return train_expert_mlp


def _train(ctx, cfgs):
    ex = _example()
    return [ex.rank_train(ctx, ex.Config(**c)) for c in cfgs]


CFGS = [
    dict(shard_type=1, act="GELU", steps=6),
    dict(shard_type=0, act="Silu", steps=6, transpose_weight=True),
    dict(shard_type=1, act="FastGELU", steps=6, transpose_weight=True, E=2, H=8, M=8),
    dict(shard_type=1, act="Relu", steps=6, sync_grads=False),  # negative control: must diverge
]


def test_loss_curves_match_single_process(world_2x2):
    ex = _example()
    per_rank = world_2x2.run(_train, CFGS)
    for n, c in enumerate(CFGS):
        cfg = ex.Config(**c)
        curves = [per_rank[r][n] for r in range(4)]
        assert all(cv == curves[0] for cv in curves), "every rank reports the same global loss"
        single = ex.single_process_train(cfg)
        diff = ex.compare(curves[0], single)
        if cfg.sync_grads:
            assert diff <= 1e-4, (c, curves[0], single)
            assert single[-1] < single[0]  # it actually trains
        else:
            assert diff > 1e-4, "skipping the b2 gradient sync must show up in the curve"


def _module_forward(ctx, shard_type):
    from moe_mc2 import ExpertMLP
    from moe_mc2.nn import tokens_of_rank

    torch.manual_seed(0)
    m = ExpertMLP(4, 8, 12, group_ep=ctx.ep_group, group_tp=ctx.tp_group, act_type="gelu", shard_type=shard_type,
                  seed=3)
    x_full = torch.randn(4, ctx.ep * 4, 8, generator=torch.Generator().manual_seed(5))
    return m(tokens_of_rank(x_full, (ctx.i, ctx.t), ctx.ep, ctx.tp, shard_type)).detach(), repr(m)


def test_module_equals_dense_mlp(world_2x2):
    from moe_mc2.nn import assemble_world, dense_expert_mlp, init_full

    x_full = torch.randn(4, 2 * 4, 8, generator=torch.Generator().manual_seed(5))
    want = dense_expert_mlp(x_full, init_full(4, 8, 12, seed=3), "gelu")
    for st in (0, 1):
        res = world_2x2.run(_module_forward, st)
        got = assemble_world([r[0] for r in res], 2, 2, st)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (st, (got - want).abs().max())
        assert "ep=2, tp=2" in res[0][1]


def test_config_fields_roundtrip():
    ex = _example()
    cfg, as_json = ex._parse(["--ep", "2", "--no-sync-grads", "--json"])
    assert cfg.ep == 2 and cfg.sync_grads is False and as_json
    assert dataclasses.asdict(cfg)["shard_type"] == 1
