"""Train moe_mc2.ExpertMLP for a few steps on local CPU ranks and compare with one process.

The distributed model (fc1 = npu_alltoall_allgather_bmm, fc2 = npu_bmm_reducescatter_alltoall,
sharded over ep x tp ranks) and a single-process dense per-expert MLP start from the same full
parameters and see the same batches; their loss curves must agree to float32 rounding.

    python examples/train_expert_mlp.py --ep 2 --tp 2 --steps 8            # LocalWorld (spawned ranks)
    torchrun --nproc-per-node 4 examples/train_expert_mlp.py --ep 2 --tp 2  # one process per rank
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist


@dataclass
class Config:
    ep: int = 2
    tp: int = 2
    E: int = 4
    C: int = 8  # tokens per expert from each ep rank
    H: int = 16
    M: int = 32
    steps: int = 8
    lr: float = 0.5
    act: str = "GELU"
    shard_type: int = 1
    seed: int = 0
    dtype: str = "float32"
    transpose_weight: bool = False
    sync_grads: bool = True  # False: skip the tp all-reduce of b2's gradient (a negative control)


def batch(cfg: Config, step: int):
    """The world's tokens x (E, ep*C, H) and targets of step `step` (same on every process)."""
    g = torch.Generator().manual_seed(1000 + cfg.seed * 7919 + step)
    x = torch.randn(cfg.E, cfg.ep * cfg.C, cfg.H, generator=g)
    teacher = torch.Generator().manual_seed(4242)
    w = torch.randn(cfg.E, cfg.H, cfg.H, generator=teacher) / cfg.H ** 0.5
    return x, torch.tanh(torch.bmm(x, w))


def rank_train(ctx, cfg: Config):
    """One rank's training loop (ctx: a launch.RankContext-like object); returns the global losses."""
    from moe_mc2 import ExpertMLP
    from moe_mc2.nn import tokens_of_rank

    dtype = getattr(torch, cfg.dtype)
    model = ExpertMLP(cfg.E, cfg.H, cfg.M, group_ep=ctx.ep_group, group_tp=ctx.tp_group, act_type=cfg.act,
                      shard_type=cfg.shard_type, dtype=dtype, seed=cfg.seed,
                      transpose_weight=cfg.transpose_weight)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    n_total = cfg.E * cfg.ep * cfg.C * cfg.H
    losses = []
    for step in range(cfg.steps):
        x_full, y_full = batch(cfg, step)
        x = tokens_of_rank(x_full, (ctx.i, ctx.t), cfg.ep, cfg.tp, cfg.shard_type).to(dtype)
        y = tokens_of_rank(y_full, (ctx.i, ctx.t), cfg.ep, cfg.tp, cfg.shard_type)
        opt.zero_grad()
        loss = ((model(x).float() - y) ** 2).sum() / n_total  # this rank's share of the global mean
        loss.backward()
        if cfg.sync_grads:
            model.sync_grads()
        opt.step()
        total = loss.detach().clone()
        dist.all_reduce(total)
        losses.append(total.item())
    return losses


def single_process_train(cfg: Config):
    """The same model as one dense per-expert MLP over all tokens; returns its losses."""
    from moe_mc2.nn import dense_expert_mlp, init_full

    dtype = getattr(torch, cfg.dtype)
    params = {k: v.clone().requires_grad_(True)
              for k, v in init_full(cfg.E, cfg.H, cfg.M, seed=cfg.seed, dtype=dtype).items()}
    opt = torch.optim.SGD(params.values(), lr=cfg.lr)
    n_total = cfg.E * cfg.ep * cfg.C * cfg.H
    losses = []
    for step in range(cfg.steps):
        x, y = batch(cfg, step)
        opt.zero_grad()
        loss = ((dense_expert_mlp(x.to(dtype), params, cfg.act).float() - y) ** 2).sum() / n_total
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def compare(dist_losses, single_losses):
    """Largest relative difference between the two curves."""
    return max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(dist_losses, single_losses))


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Config()
    for f, v in asdict(d).items():
        if isinstance(v, bool):
            p.add_argument("--" + f.replace("_", "-"), action=argparse.BooleanOptionalAction, default=v)
        else:
            p.add_argument("--" + f.replace("_", "-"), type=type(v), default=v)
    p.add_argument("--json", action="store_true", help="print the curves as one JSON line")
    a = vars(p.parse_args(argv))
    as_json = a.pop("json")
    return Config(**a), as_json


def _report(cfg, dist_losses, single_losses, as_json):
    diff = compare(dist_losses, single_losses)
    print(f"ExpertMLP E={cfg.E} H={cfg.H} M={cfg.M} on ep={cfg.ep} x tp={cfg.tp} ranks, act={cfg.act}, "
          f"shard_type={cfg.shard_type}, {cfg.dtype}")
    print(f"{'step':>4}  {'distributed':>12}  {'single':>12}")
    for k, (a, b) in enumerate(zip(dist_losses, single_losses)):
        print(f"{k:>4}  {a:12.6f}  {b:12.6f}")
    print(f"max relative difference: {diff:.2e}")
    if as_json:
        print(json.dumps({"distributed": dist_losses, "single": single_losses, "max_rel_diff": diff}))
    tol = 1e-4 if cfg.dtype == "float32" else 5e-2
    return 0 if diff <= tol else 1


def validate(cfg: Config) -> None:
    """The layer's sizes in the flags' terms, before any rank starts (moe_mc2.contract.problem)."""
    from moe_mc2.contract.problem import check_problem

    check_problem("train_expert_mlp.py", ep=cfg.ep, tp=cfg.tp, E=cfg.E, C=cfg.C, H=cfg.H, M=cfg.M,
                  shard_type=cfg.shard_type, dtype=getattr(torch, cfg.dtype, None), act=cfg.act)
    if cfg.steps < 1:
        raise ValueError(f"train_expert_mlp.py: --steps={cfg.steps} must be >= 1")


def main(argv=None) -> int:
    cfg, as_json = _parse(argv)
    try:
        validate(cfg)
    except (ValueError, TypeError) as exc:
        print(exc, file=sys.stderr)
        return 2
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        from moe_mc2.launch import RankContext, build_ep_tp_groups

        dist.init_process_group("gloo")
        ep_group, tp_group = build_ep_tp_groups(cfg.ep, cfg.tp)
        ctx = RankContext(dist.get_rank(), dist.get_world_size(), cfg.ep, cfg.tp, ep_group, tp_group)
        losses = rank_train(ctx, cfg)
        rc = 0
        if ctx.rank == 0:
            rc = _report(cfg, losses, single_process_train(cfg), as_json)
        dist.destroy_process_group()
        return rc
    from moe_mc2.launch import LocalWorld

    with LocalWorld(cfg.ep, cfg.tp) as world:
        per_rank = world.run(rank_train, cfg)
    return _report(cfg, per_rank[0], single_process_train(cfg), as_json)


if __name__ == "__main__":
    sys.exit(main())
