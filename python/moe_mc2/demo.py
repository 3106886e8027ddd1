"""`python -m moe_mc2 demo`: the op on ep x tp local CPU ranks (gloo), checked against the reference."""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .contract.problem import add_problem_args

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m moe_mc2 demo", description=__doc__)
    add_problem_args(p, ep=4, tp=2, E=4, C=1024, H=1024, M=8192, dtypes=DTYPES, dtype="float16", act="None")
    p.add_argument("--bias", action="store_true", help="add a (E/ep, 1, M/tp) bias")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def world_inputs(a, ep, tp):
    """Every rank's inputs, generated identically on each rank from the seed."""
    dtype = DTYPES[a.dtype]
    g = torch.Generator().manual_seed(a.seed)
    El, N = a.E // ep, a.M // tp
    x_shape = (a.E, a.C // tp, a.H) if a.shard_type == 1 else (a.E, a.C, a.H // tp)
    xs = [torch.randn(x_shape, generator=g).to(dtype) for _ in range(ep * tp)]
    ws = [(torch.randn((El, a.H, N), generator=g) / a.H ** 0.5).to(dtype) for _ in range(ep * tp)]
    bdt = torch.float16 if dtype == torch.float16 else torch.float32
    bs = [torch.randn((El, 1, N), generator=g).to(bdt) for _ in range(ep * tp)] if a.bias else None
    return xs, ws, bs


def _rank_main(ctx, a):
    import moe_mc2
    from moe_mc2 import reference, testing

    xs, ws, bs = world_inputs(a, ctx.ep, ctx.tp)
    kw = dict(group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
              group_tp_worldsize=ctx.tp, shard_type=a.shard_type, act_type=a.act,
              need_allgather_out=True, need_activation_feature=True)
    x, w, b = xs[ctx.rank], ws[ctx.rank], None if bs is None else bs[ctx.rank]
    moe_mc2.npu_alltoall_allgather_bmm(x, w, bias=b, **kw)  # warm-up
    torch.distributed.barrier()
    t0 = time.perf_counter()
    y1, y2, y3 = moe_mc2.npu_alltoall_allgather_bmm(x, w, bias=b, **kw)
    elapsed = time.perf_counter() - t0
    r1, r2, r3 = reference.forward(xs, ws, bs, ep=ctx.ep, tp=ctx.tp, shard_type=a.shard_type, act_type=a.act,
                                   need_allgather_out=True, need_activation_feature=True, ranks=[ctx.rank],
                                   rounded=False)[0]
    scale = reference.magnitude(xs, ws, bs, ep=ctx.ep, tp=ctx.tp, shard_type=a.shard_type, rank=ctx.rank)
    extra = testing.intermediate_roundings(x.dtype, x.device)
    ratios = [testing.rounding_ratio(y1, r1, 1.2 * scale, intermediate=extra)]
    if y3.numel():
        ratios.append(testing.rounding_ratio(y3, r3, scale, intermediate=extra))
    return {
        "rank": ctx.rank, "i": ctx.i, "t": ctx.t, "ms": elapsed * 1e3,
        "shapes": [tuple(x.shape), tuple(w.shape), tuple(y1.shape), tuple(y2.shape), tuple(y3.shape)],
        "y1_err": float((y1.double() - r1.double()).abs().max()),
        "y2_exact": bool(torch.equal(y2, r2.to(y2.dtype))),
        "ratio": max(ratios),
    }


def validate(a) -> None:
    """Every size in the user's terms (flags), before any rank starts (contract/problem.py)."""
    from .contract.problem import check_problem

    check_problem("python -m moe_mc2 demo", ep=a.ep, tp=a.tp, E=a.E, C=a.C, H=a.H, M=a.M, shard_type=a.shard_type,
                  dtype=DTYPES[a.dtype], act=a.act)


def main(argv=None) -> int:
    from .launch import LocalWorld

    a = parse(argv)
    try:
        validate(a)
    except (ValueError, TypeError) as exc:
        print(exc, file=sys.stderr)
        return 2
    ep, tp = a.ep, a.tp
    print(f"moe_mc2 demo: ep={ep} tp={tp} E={a.E} C={a.C} H={a.H} M={a.M} dtype={a.dtype} act={a.act} "
          f"shard_type={a.shard_type} bias={a.bias}", flush=True)
    print(f"[1/3] starting {ep * tp} local CPU ranks (gloo) ...", flush=True)
    t0 = time.perf_counter()
    with LocalWorld(ep, tp) as world:
        print(f"      ready in {time.perf_counter() - t0:.1f} s", flush=True)
        print("[2/3] running npu_alltoall_allgather_bmm (warm-up + timed call) and the reference on every rank ...",
              flush=True)
        results = world.run(_rank_main, a)
    print("[3/3] results (error ratio: max |y - ref| / one-rounding tolerance, <= 1 passes)")
    s = results[0]["shapes"]
    print(f"      x {s[0]}  weight {s[1]}  ->  y1 {s[2]}  y2 {s[3]}  y3 {s[4]}")
    print(f"      {'rank':>4} {'(i,t)':>6} {'time ms':>9} {'max|y1-ref|':>12} {'ratio':>7} {'y2 exact':>9}")
    ok = True
    for r in results:
        good = r["ratio"] <= 1.0 and r["y2_exact"]
        ok &= good
        print(f"      {r['rank']:>4} {str((r['i'], r['t'])):>6} {r['ms']:>9.1f} {r['y1_err']:>12.3e} "
              f"{r['ratio']:>7.3f} {str(r['y2_exact']):>9}{'' if good else '  MISMATCH'}")
    print("verified: every rank matches the reference" if ok else "FAILED: mismatch against the reference")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
