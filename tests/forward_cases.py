"""Forward-op cases executed on every rank of a local world (module-level: ranks import it).

Each rank generates the inputs of the whole simulated world from the case's seed, runs the op on
its own inputs and compares with the single-process reference of its own rank. Results come back
as problem strings, so one world call checks many cases.
"""
from __future__ import annotations

import itertools

import torch

import moe_mc2
from moe_mc2 import reference, testing
from moe_mc2.runtime.forward import forced_tiles

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def world_inputs(case, ep, tp):
    dtype = DTYPES[case["dtype"]]
    g = torch.Generator().manual_seed(case.get("seed", 0))
    E, C, H, N = case["E"], case["C"], case["H"], case["N"]
    El = E // ep
    x_shape = (E, C // tp, H) if case["shard"] == 1 else (E, C, H // tp)
    xs = [torch.randn(x_shape, generator=g).to(dtype) for _ in range(ep * tp)]
    ws = [(torch.randn((El, H, N), generator=g) / H ** 0.5).to(dtype) for _ in range(ep * tp)]
    bias = case.get("bias")
    bs = None
    if bias:
        bdt = torch.float16 if dtype == torch.float16 else torch.float32
        shape = (El, N) if bias == 2 else (El, 1, N)
        bs = [torch.randn(shape, generator=g).to(bdt) for _ in range(ep * tp)]
    return xs, ws, bs


def _layout(x, w, case):
    if case.get("transposed"):
        w = w.transpose(1, 2).contiguous().transpose(1, 2)  # (El, N, H) storage, logical (El, H, N)
        assert not w.is_contiguous()
    if case.get("noncontig_x"):
        x = x.transpose(0, 1).contiguous().transpose(0, 1)  # same values, expert dim not outermost
        assert not x.is_contiguous()
    return x, w


def check_case(ctx, case) -> list:
    ep, tp, r = ctx.ep, ctx.tp, ctx.rank
    xs, ws, bs = world_inputs(case, ep, tp)
    x, w = _layout(xs[r], ws[r], case)
    y2_flag, y3_flag = case.get("y2", False), case.get("y3", False)
    with forced_tiles(case.get("tiles"), case.get("expert_tiles")):
        y1, y2, y3 = moe_mc2.npu_alltoall_allgather_bmm(
            x, w, bias=None if bs is None else bs[r], group_ep=ctx.group_ep, group_ep_worldsize=ep,
            group_tp=ctx.tp_group, group_tp_worldsize=tp, shard_type=case["shard"], act_type=case["act"],
            need_allgather_out=y2_flag, need_activation_feature=y3_flag)
    r1, r2, r3 = reference.forward(xs, ws, bs, ep=ep, tp=tp, shard_type=case["shard"], act_type=case["act"],
                                   need_allgather_out=True, need_activation_feature=True, ranks=[r],
                                   rounded=False)[0]
    scale = reference.magnitude(xs, ws, bs, ep=ep, tp=tp, shard_type=case["shard"], rank=r)
    extra = testing.intermediate_roundings(x.dtype, x.device)
    act = moe_mc2.contract.activations.parse_act_type(case["act"])
    problems = []
    if y1.shape != r1.shape or y1.dtype != x.dtype:
        return [f"y1 {tuple(y1.shape)} {y1.dtype}, want {tuple(r1.shape)} {x.dtype}"]
    ratio = testing.rounding_ratio(y1, r1, 1.2 * scale, intermediate=extra)
    if ratio > 1:
        problems.append(f"y1 error ratio {ratio:.3f}")
    if y2_flag:
        if not torch.equal(y2, r2):
            problems.append("y2 differs from the reference (must be bit-exact)")
    elif y2.numel() != 0:
        problems.append(f"y2 not asked for but has shape {tuple(y2.shape)}")
    if y3_flag and act != 0:
        ratio3 = testing.rounding_ratio(y3, r3, scale, intermediate=extra) if y3.shape == r3.shape else float("inf")
        if ratio3 > 1:
            problems.append(f"y3 error ratio {ratio3:.3f} shape {tuple(y3.shape)}")
    elif y3.numel() != 0:
        problems.append(f"y3 not produced by the contract but has shape {tuple(y3.shape)}")
    if y2.dtype != x.dtype or y3.dtype != x.dtype:
        problems.append("empty/optional outputs must have x's dtype")
    return problems


def run_cases(ctx, cases) -> dict:
    """{case name: problems} for the cases that failed, plus how many ran."""
    failed = {}
    for case in cases:
        try:
            problems = check_case(ctx, case)
        except Exception as exc:  # one broken case must not hide the others
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            failed[case_name(case)] = problems
    return {"ran": len(cases), "failed": failed}


def case_name(case) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(case.items()))


def full_matrix(**sizes):
    """Both shard types x 5 activations x bias none/2-D/3-D x 3 dtypes x weight layouts x y2/y3 flags."""
    out = []
    for n, (shard, act, bias, dt, tw, y2, y3) in enumerate(itertools.product(
            (0, 1), ("None", "GELU", "Silu", "Relu", "FastGELU"), (None, 2, 3),
            ("float16", "bfloat16", "float32"), (False, True), (False, True), (False, True))):
        out.append(dict(sizes, shard=shard, act=act, bias=bias, dtype=dt, transposed=tw, y2=y2, y3=y3, seed=n))
    return out
