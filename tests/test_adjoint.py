"""npu_bmm_reducescatter_alltoall: results against the single-process reference, rules, fake kernel."""
from __future__ import annotations

import pytest
import torch

import moe_mc2
from moe_mc2 import reference_adjoint
from moe_mc2.contract.adjoint_rules import check_adjoint
from moe_mc2.contract.errors import ContractTypeError, ContractValueError
from moe_mc2.contract.rules import bias_dtype_for

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# max |out - ref| / max |ref|: fp32 exact sums; bf16 rounds each rank's product once (CPU oneDNN
# writes bf16), fp16 is upcast (exact products, fp32 sums).
REL_TOL = {torch.float32: 1e-5, torch.bfloat16: 1.6e-2, torch.float16: 2e-3}


def world_inputs(seed, ep, tp, *, El, C, N, H, shard_type, dtype, bias_form=None, transposed=False):
    """Every rank's (x, weight, bias), indexed by world rank r = t*ep + i."""
    g = torch.Generator().manual_seed(seed)
    hb = H if shard_type == 1 else H // tp
    out = []
    for _ in range(ep * tp):
        x = torch.randn(El, ep * C, N, generator=g).to(dtype)
        if transposed:
            w = torch.randn(El, H, N, generator=g).to(dtype).transpose(1, 2)
        else:
            w = torch.randn(El, N, H, generator=g).to(dtype)
        b = None
        if bias_form is not None:
            shape = (El, hb) if bias_form == 2 else (El, 1, hb)
            b = torch.randn(shape, generator=g).to(bias_dtype_for(dtype))
        out.append((x, w, b))
    return out


CASES = [
    # (seed, El, C, N, H, shard_type, dtype, bias_form, transposed, tiles)
    (1, 2, 4, 8, 6, 1, "float32", None, False, None),
    (2, 2, 4, 8, 6, 0, "float32", None, False, None),
    (3, 1, 6, 5, 4, 1, "float32", 2, False, 3),
    (4, 3, 5, 7, 8, 0, "float32", 3, False, 2),
    (5, 2, 8, 16, 12, 1, "float32", 3, True, 4),
    (6, 2, 6, 16, 10, 0, "float32", 2, True, 5),
    (7, 2, 8, 32, 16, 1, "bfloat16", 3, False, 2),
    (8, 2, 8, 32, 16, 0, "bfloat16", 2, True, None),
    (9, 2, 4, 16, 8, 1, "float16", 2, False, 2),
    (10, 4, 4, 16, 8, 0, "float16", None, True, 1),
]


def _run_cases(ctx, cases, via_op_mask):
    from moe_mc2.runtime import adjoint

    results = []
    for case, via_op in zip(cases, via_op_mask):
        seed, El, C, N, H, st, dt, bf, tr, tiles = case
        x, w, b = world_inputs(seed, ctx.ep, ctx.tp, El=El, C=C, N=N, H=H, shard_type=st, dtype=DTYPES[dt],
                               bias_form=bf, transposed=tr)[ctx.rank]
        if via_op:
            out = moe_mc2.npu_bmm_reducescatter_alltoall(
                x, w, bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
                group_tp_worldsize=ctx.tp, shard_type=st)
        else:
            out = adjoint.run(x, w, b, group_ep=ctx.group_ep, ep=ctx.ep, group_tp=ctx.group_tp, tp=ctx.tp,
                              shard_type=st, tiles=tiles)
        results.append(out)
    return results


def _check(results, cases, ep, tp):
    for n, case in enumerate(cases):
        seed, El, C, N, H, st, dt, bf, tr, tiles = case
        inputs = world_inputs(seed, ep, tp, El=El, C=C, N=N, H=H, shard_type=st, dtype=DTYPES[dt], bias_form=bf,
                              transposed=tr)
        refs = reference_adjoint.adjoint([a[0] for a in inputs], [a[1] for a in inputs], [a[2] for a in inputs],
                                         ep=ep, tp=tp, shard_type=st, dtype=torch.float64)
        for r in range(ep * tp):
            out = results[r][n]
            ref = refs[r]
            assert out.dtype == DTYPES[dt], (case, out.dtype)
            assert tuple(out.shape) == tuple(ref.shape), (case, out.shape, ref.shape)
            err = (out.double() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-12)
            assert err <= REL_TOL[DTYPES[dt]], f"case {case} rank {r}: relative error {err:.3g}"


def test_adjoint_matches_reference_2x2(world_2x2):
    mask = [n % 2 == 0 for n in range(len(CASES))]  # half through the registered op, half with forced tiles
    results = world_2x2.run(_run_cases, CASES, mask)
    _check(results, CASES, 2, 2)


def test_adjoint_matches_reference_2x4(world_2x4):
    cases = [(21, 2, 8, 8, 8, 1, "float32", 3, False, 2), (22, 2, 3, 8, 8, 0, "bfloat16", 2, True, None)]
    results = world_2x4.run(_run_cases, cases, [False, True])
    _check(results, cases, 2, 4)


def _route_only(ctx, seed, st):
    """weight=None routes x itself: the adjoint of the forward's gather (y2)."""
    from moe_mc2 import reference
    from moe_mc2.runtime import adjoint

    g = torch.Generator().manual_seed(seed)
    El, C, H = 2, 4, 8
    gs = [torch.randn(El, ctx.ep * C, H, generator=g) for _ in range(ctx.world_size)]
    out = adjoint.run(gs[ctx.rank], None, None, group_ep=ctx.group_ep, ep=ctx.ep, group_tp=ctx.group_tp, tp=ctx.tp,
                      shard_type=st, tiles=2)
    # <gather(x), g> == <x, route(g)> for any x: check the adjoint identity with the forward reference.
    xs_shape = (El * ctx.ep, C // ctx.tp, H) if st == 1 else (El * ctx.ep, C, H // ctx.tp)
    xs = [torch.randn(xs_shape, generator=g) for _ in range(ctx.world_size)]
    lhs = sum((reference.gathered_input(xs, r % ctx.ep, ctx.ep, ctx.tp, st).double() * gs[r].double()).sum()
              for r in range(ctx.world_size))
    return out, xs[ctx.rank], lhs.item()


@pytest.mark.parametrize("st", [0, 1])
def test_route_is_adjoint_of_gather(world_2x2, st):
    res = world_2x2.run(_route_only, 40 + st, st)
    rhs = sum((out.double() * x.double()).sum().item() for out, x, _ in res)
    lhs = res[0][2]
    assert abs(lhs - rhs) <= 1e-5 * max(1.0, abs(lhs)), (lhs, rhs)  # fp32 route


def _bad_calls(ctx, calls):
    out = []
    for kwargs in calls:
        El, C, N, H = 2, 4, 8, 6
        x = torch.ones(kwargs.pop("x_shape", (El, ctx.ep * C, N)), dtype=kwargs.pop("x_dtype", torch.float32))
        w = torch.ones(kwargs.pop("w_shape", (El, N, H)), dtype=kwargs.pop("w_dtype", x.dtype))
        b_shape = kwargs.pop("b_shape", None)
        b = None if b_shape is None else torch.ones(b_shape, dtype=kwargs.pop("b_dtype", torch.float32))
        args = dict(group_ep=ctx.group_ep, group_ep_worldsize=ctx.ep, group_tp=ctx.group_tp,
                    group_tp_worldsize=ctx.tp, shard_type=1)
        args.update(kwargs)
        try:
            moe_mc2.npu_bmm_reducescatter_alltoall(x, w, bias=b, **args)
            out.append(None)
        except (ContractValueError, ContractTypeError) as exc:
            out.append((type(exc).__name__, exc.arg, exc.rule_id))
    # The world must still work after all those refusals (no peer left inside a collective).
    x = torch.ones(2, ctx.ep * 4, 3)
    ok = moe_mc2.npu_bmm_reducescatter_alltoall(x, torch.ones(2, 3, 4), group_ep=ctx.group_ep,
                                                group_ep_worldsize=ctx.ep, group_tp=ctx.group_tp,
                                                group_tp_worldsize=ctx.tp, shard_type=1)
    return out, ok


BAD = [
    (dict(group_ep_worldsize=3), ("ContractValueError", "group_ep_worldsize", "ep.world_size")),
    (dict(group_tp_worldsize=4), ("ContractValueError", "group_tp", "group.size")),
    (dict(shard_type=2), ("ContractValueError", "shard_type", "shard_type.value")),
    (dict(x_dtype=torch.int32, w_dtype=torch.int32), ("ContractTypeError", "x", "x.dtype")),
    (dict(w_dtype=torch.float64), ("ContractTypeError", "weight", "weight.dtype")),
    (dict(x_shape=(2, 8)), ("ContractValueError", "x", "x.rank")),
    (dict(w_shape=(3, 8, 6)), ("ContractValueError", "weight", "weight.experts")),
    (dict(w_shape=(2, 7, 6)), ("ContractValueError", "weight", "weight.inner")),
    (dict(x_shape=(2, 7, 8)), ("ContractValueError", "x", "rows.multiple")),
    (dict(x_shape=(2, 6, 8)), ("ContractValueError", "x", "C.multiple")),
    (dict(shard_type=0, w_shape=(2, 8, 5)), ("ContractValueError", "weight", "H.multiple")),
    (dict(b_shape=(2, 3)), ("ContractValueError", "bias", "bias.shape")),
    (dict(b_shape=(2, 1, 6), b_dtype=torch.float16), ("ContractTypeError", "bias", "bias.dtype")),
    (dict(group_tp="no-such-group"), ("ContractValueError", "group_tp", "group.exists")),
]


def test_bad_calls_raise_same_error_on_every_rank(world_2x2):
    calls = [c for c, _ in BAD]
    results = world_2x2.run(_bad_calls, calls)
    for rank_out, ok in results:
        assert [r for r in rank_out] == [want for _, want in BAD]
        assert torch.equal(ok, torch.full_like(ok, 3 * 2.0))  # 3 products of ones, summed over tp=2


def test_rules_without_a_world():
    s = check_adjoint((4, 16, 8), torch.bfloat16, (4, 8, 12), torch.bfloat16, (4, 1, 6), torch.float32,
                      group_ep="a", ep=2, group_tp="b", tp=2, shard_type=0)
    assert s.out == (8, 8, 6) and s.E == 8 and s.C == 8
    s = check_adjoint((4, 16, 8), torch.float16, (4, 8, 12), torch.float16, (4, 12), torch.float16,
                      group_ep="a", ep=2, group_tp="b", tp=2, shard_type=1)
    assert s.out == (8, 4, 12)
    with pytest.raises(ContractValueError, match="group.distinct"):
        check_adjoint((4, 16, 8), torch.float32, (4, 8, 12), torch.float32, None, None,
                      group_ep="a", ep=2, group_tp="a", tp=2, shard_type=0)
    with pytest.raises(ContractTypeError, match=r"bias.*float32 when x is bfloat16"):
        check_adjoint((4, 16, 8), torch.bfloat16, (4, 8, 12), torch.bfloat16, (4, 6), torch.bfloat16,
                      group_ep="a", ep=2, group_tp="b", tp=2, shard_type=0)
    with pytest.raises(ContractTypeError, match="x.dtype"):
        check_adjoint((4, 16, 8), torch.float32, (4, 8, 12), torch.float32, None, None,
                      group_ep="a", ep=2, group_tp="b", tp=2, shard_type=0, portable=False)


def test_fake_kernel_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(4, 16, 8, dtype=torch.bfloat16)
        w = torch.empty(4, 12, 8, dtype=torch.bfloat16).transpose(1, 2)
        out = torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(
            x, w, bias=torch.empty(4, 6), group_ep="a", group_ep_worldsize=2, group_tp="b", group_tp_worldsize=2,
            shard_type=0)
        assert tuple(out.shape) == (8, 8, 6) and out.dtype == torch.bfloat16
        out = torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(
            x, w, group_ep="a", group_ep_worldsize=2, group_tp="b", group_tp_worldsize=2, shard_type=1)
        assert tuple(out.shape) == (8, 4, 12)
        with pytest.raises(ContractValueError, match="weight.inner"):
            torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(
                x, torch.empty(4, 7, 12, dtype=torch.bfloat16), group_ep="a", group_ep_worldsize=2, group_tp="b",
                group_tp_worldsize=2, shard_type=1)


def test_reference_adjoint_is_the_transpose_of_the_forward_reference():
    """<forward(x), g> == <x, adjoint(g)> with weights transposed: the reference pair is consistent."""
    from moe_mc2 import reference

    ep, tp, El, C, H, N = 2, 2, 2, 4, 6, 3
    g = torch.Generator().manual_seed(7)
    for st in (0, 1):
        xs_shape = (El * ep, C // tp, H) if st == 1 else (El * ep, C, H // tp)
        xs = [torch.randn(xs_shape, generator=g, dtype=torch.float64) for _ in range(ep * tp)]
        ws = [torch.randn(El, H, N, generator=g, dtype=torch.float64) for _ in range(ep * tp)]
        gs = [torch.randn(El, ep * C, N, generator=g, dtype=torch.float64) for _ in range(ep * tp)]
        ys = reference.forward(xs, ws, None, ep=ep, tp=tp, shard_type=st)
        back = reference_adjoint.adjoint(gs, [w.transpose(1, 2) for w in ws], None, ep=ep, tp=tp, shard_type=st)
        lhs = sum((y[0] * gg).sum() for y, gg in zip(ys, gs))
        rhs = sum((x * b).sum() for x, b in zip(xs, back))
        assert torch.allclose(lhs, rhs, rtol=1e-10), (st, lhs, rhs)
