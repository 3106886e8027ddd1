"""Gradients of both ops on every rank equal single-process autograd over the reference world."""
from __future__ import annotations

import torch

import moe_mc2
from moe_mc2 import reference, reference_adjoint
from moe_mc2.contract.rules import bias_dtype_for

TOL = 2e-5  # float32 runtime vs float64 reference: max |diff| / max |ref|


def _inputs(seed, ep, tp, *, El, C, H, N, st, bias_form, transposed, adjoint=False, dtype=torch.float32):
    """Per world rank (x, weight-leaf, bias, upstream grads...) for the forward or the adjoint op."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(ep * tp):
        if not adjoint:
            x = torch.randn((El * ep, C // tp, H) if st == 1 else (El * ep, C, H // tp), generator=g)
            w = torch.randn((El, N, H) if transposed else (El, H, N), generator=g) / H ** 0.5
            nb = N
            grads = [torch.randn(El, ep * C, N, generator=g), torch.randn(El, ep * C, H, generator=g),
                     torch.randn(El, ep * C, N, generator=g)]
        else:
            x = torch.randn(El, ep * C, N, generator=g)
            w = torch.randn((El, H, N) if transposed else (El, N, H), generator=g) / N ** 0.5
            nb = H if st == 1 else H // tp
            grads = [torch.randn((El * ep, C // tp, H) if st == 1 else (El * ep, C, H // tp), generator=g)]
        b = None
        if bias_form:
            b = torch.randn((El, nb) if bias_form == 2 else (El, 1, nb), generator=g).to(bias_dtype_for(dtype))
        out.append((x.to(dtype), w.to(dtype), b, grads))
    return out


def _w(leaf, transposed):
    return leaf.transpose(1, 2) if transposed else leaf


# (seed, El, C, H, N, shard_type, act, bias_form, transposed, y2, y3, wants)  wants: which leaves need grad
FWD_CASES = [
    (1, 2, 4, 6, 5, 1, 0, None, False, False, False, "xwb"),
    (2, 2, 4, 6, 5, 0, 1, 2, False, False, False, "xwb"),
    (3, 1, 6, 4, 3, 1, 2, 3, True, False, False, "xwb"),
    (4, 2, 2, 8, 4, 0, 3, 2, True, False, False, "xwb"),
    (5, 2, 4, 6, 5, 1, 4, 3, False, False, False, "xwb"),
    (6, 2, 4, 6, 5, 0, 0, 3, True, True, False, "xwb"),
    (7, 2, 4, 6, 5, 1, 1, None, True, False, True, "xwb"),
    (8, 3, 4, 4, 6, 0, 2, 2, False, True, True, "xwb"),
    (9, 2, 4, 6, 5, 1, 3, 3, False, False, False, "w"),
    (10, 2, 4, 6, 5, 0, 4, 2, True, False, True, "x"),
    (11, 2, 4, 6, 5, 1, 2, 2, False, True, False, "xb"),
    (12, 2, 4, 8, 4, 0, 1, 3, False, False, False, "wb"),
]

ADJ_CASES = [
    # (seed, El, C, H, N, shard_type, bias_form, transposed, wants)
    (31, 2, 4, 6, 5, 1, None, False, "xw"),
    (32, 2, 4, 6, 5, 0, 2, False, "xwb"),
    (33, 1, 6, 8, 3, 1, 3, True, "xwb"),
    (34, 3, 2, 4, 6, 0, 3, True, "xwb"),
    (35, 2, 4, 6, 5, 1, 2, False, "b"),
    (36, 2, 4, 6, 5, 0, None, True, "w"),
]


def _rank_forward_grads(ctx, cases):
    out = []
    for case in cases:
        seed, El, C, H, N, st, act, bf, tr, y2, y3, wants = case
        x, wl, b, (g1, g2, g3) = _inputs(seed, ctx.ep, ctx.tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf,
                                         transposed=tr)[ctx.rank]
        leaves = {"x": x, "w": wl, "b": b}
        for k, t in leaves.items():
            if t is not None and k in wants:
                t.requires_grad_(True)
        y = moe_mc2.npu_alltoall_allgather_bmm(
            x, _w(wl, tr), bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
            group_tp_worldsize=ctx.tp, shard_type=st, act_type=act, need_allgather_out=y2,
            need_activation_feature=y3)
        shapes = [tuple(t.shape) for t in y]
        loss = (y[0] * g1).sum()
        if y2:
            loss = loss + (y[1] * g2).sum()
        if y3 and act:
            loss = loss + (y[2] * g3).sum()
        loss.backward()
        out.append(({k: (None if t is None or t.grad is None else t.grad) for k, t in leaves.items()}, shapes))
    return out


def _reference_forward_grads(case, ep, tp):
    seed, El, C, H, N, st, act, bf, tr, y2, y3, wants = case
    inputs = _inputs(seed, ep, tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr)
    xs, ws, bs = [], [], []
    for x, wl, b, _ in inputs:
        xs.append(x.double().requires_grad_("x" in wants))
        ws.append(wl.double().requires_grad_("w" in wants))
        bs.append(None if b is None else b.double().requires_grad_("b" in wants))
    ys = reference.forward(xs, [_w(w, tr) for w in ws], bs if bf else None, ep=ep, tp=tp, shard_type=st,
                           act_type=act, need_allgather_out=True, need_activation_feature=True)
    loss = 0
    for r, (x, wl, b, (g1, g2, g3)) in enumerate(inputs):
        loss = loss + (ys[r][0] * g1.double()).sum()
        if y2:
            loss = loss + (ys[r][1] * g2.double()).sum()
        if y3 and act:
            loss = loss + (ys[r][2] * g3.double()).sum()
    loss.backward()
    return [{"x": xs[r].grad, "w": ws[r].grad, "b": None if bs[r] is None else bs[r].grad} for r in range(ep * tp)]


def _compare(got, want, what):
    for k in ("x", "w", "b"):
        a, b = got[k], want[k]
        assert (a is None) == (b is None), f"{what}: grad of {k}: {a is None} vs reference {b is None}"
        if a is None:
            continue
        assert a.shape == b.shape, f"{what}: grad of {k} shape {tuple(a.shape)} vs {tuple(b.shape)}"
        err = (a.double() - b).abs().max().item() / max(b.abs().max().item(), 1e-12)
        assert err <= TOL, f"{what}: grad of {k}: relative error {err:.3g}"


def _check_forward(results, cases, ep, tp):
    for n, case in enumerate(cases):
        want = _reference_forward_grads(case, ep, tp)
        seed, El, C, H, N, st, act, bf, tr, y2, y3, wants = case
        for r in range(ep * tp):
            grads, shapes = results[r][n]
            _compare(grads, want[r], f"forward case {case} rank {r}")
            # outputs not asked for stay empty even when backward needed them internally
            assert (shapes[1] == (0, 0, 0)) == (not y2), shapes
            assert (shapes[2] == (0, 0, 0)) == (not (y3 and act)), shapes


def test_forward_op_gradients_2x2(world_2x2):
    results = world_2x2.run(_rank_forward_grads, FWD_CASES)
    _check_forward(results, FWD_CASES, 2, 2)


def test_forward_op_gradients_4x2(world_4x2):
    cases = [(41, 1, 4, 4, 3, 1, 2, 3, True, True, True, "xwb"), (42, 2, 2, 4, 3, 0, 4, 2, False, False, False, "xwb")]
    results = world_4x2.run(_rank_forward_grads, cases)
    _check_forward(results, cases, 4, 2)


def _rank_adjoint_grads(ctx, cases):
    out = []
    for case in cases:
        seed, El, C, H, N, st, bf, tr, wants = case
        x, wl, b, (g,) = _inputs(seed, ctx.ep, ctx.tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr,
                                 adjoint=True)[ctx.rank]
        leaves = {"x": x, "w": wl, "b": b}
        for k, t in leaves.items():
            if t is not None and k in wants:
                t.requires_grad_(True)
        y = moe_mc2.npu_bmm_reducescatter_alltoall(
            x, _w(wl, tr), bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
            group_tp_worldsize=ctx.tp, shard_type=st)
        (y * g).sum().backward()
        out.append({k: (None if t is None or t.grad is None else t.grad) for k, t in leaves.items()})
    return out


def _check_adjoint(results, cases, ep, tp):
    for n, case in enumerate(cases):
        seed, El, C, H, N, st, bf, tr, wants = case
        inputs = _inputs(seed, ep, tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr, adjoint=True)
        xs = [x.double().requires_grad_("x" in wants) for x, _, _, _ in inputs]
        ws = [w.double().requires_grad_("w" in wants) for _, w, _, _ in inputs]
        bs = [None if b is None else b.double().requires_grad_("b" in wants) for _, _, b, _ in inputs]
        outs = reference_adjoint.adjoint(xs, [_w(w, tr) for w in ws], bs if bf else None, ep=ep, tp=tp,
                                         shard_type=st, dtype=torch.float64)
        sum((o * inp[3][0].double()).sum() for o, inp in zip(outs, inputs)).backward()
        for r in range(ep * tp):
            want = {"x": xs[r].grad, "w": ws[r].grad, "b": None if bs[r] is None else bs[r].grad}
            _compare(results[r][n], want, f"adjoint case {case} rank {r}")


def test_adjoint_op_gradients_2x2(world_2x2):
    results = world_2x2.run(_rank_adjoint_grads, ADJ_CASES)
    _check_adjoint(results, ADJ_CASES, 2, 2)


def test_adjoint_op_gradients_2x4(world_2x4):
    cases = [(51, 2, 8, 8, 3, 1, 3, True, "xwb"), (52, 1, 4, 8, 5, 0, 2, False, "xwb")]
    results = world_2x4.run(_rank_adjoint_grads, cases)
    _check_adjoint(results, cases, 2, 4)


def _rank_bf16_grads(ctx):
    """bfloat16 through both ops: gradients exist, have the right dtypes and are finite."""
    x, wl, b, (g1, _, _) = _inputs(61, ctx.ep, ctx.tp, El=2, C=4, H=8, N=4, st=1, bias_form=3, transposed=False,
                                   dtype=torch.bfloat16)[ctx.rank]
    for t in (x, wl, b):
        t.requires_grad_(True)
    y1, y2, y3 = moe_mc2.npu_alltoall_allgather_bmm(
        x, wl, bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
        group_tp_worldsize=ctx.tp, shard_type=1, act_type="silu")
    (y1.float() * g1).sum().backward()
    return [(t.grad.dtype, bool(torch.isfinite(t.grad.float()).all()), t.grad.abs().sum().item() > 0) for t in (x, wl, b)]


def test_bf16_gradients(world_2x2):
    for rank in world_2x2.run(_rank_bf16_grads):
        assert rank == [(torch.bfloat16, True, True), (torch.bfloat16, True, True), (torch.float32, True, True)]


def test_no_grad_path_is_plain_op():
    """Without requires_grad the autograd kernel is a pass-through (checked on fake tensors, no world)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(4, 2, 6)
        w = torch.empty(2, 6, 5, requires_grad=True)
        y1, y2, y3 = torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            x, w, group_ep="a", group_ep_worldsize=2, group_tp="b", group_tp_worldsize=2, shard_type=1, act_type=1)
        assert y1.shape == (2, 8, 5) and y2.numel() == 0 and y3.numel() == 0 and y1.requires_grad


# --- second derivatives: a gradient penalty through both ops ------------------------------------

# (seed, El, C, H, N, shard_type, act, bias_form, transposed, y2, wants)
DOUBLE_CASES = [
    (71, 2, 4, 6, 5, 1, 1, 3, False, False, "xwb"),  # GELU: every cross term
    (72, 2, 4, 6, 5, 0, 3, 2, True, False, "x"),  # Relu, only x: the first-order grad still has a graph
    (73, 1, 4, 4, 3, 1, 2, None, False, True, "w"),  # Silu, only weight, y2 used
    (74, 2, 2, 8, 4, 0, 4, 3, False, True, "xb"),  # FastGELU with y2 in the loss
    (75, 2, 4, 6, 5, 1, 0, 2, True, True, "xw"),  # no activation: only the bilinear cross terms
]


def _penalty_inputs(case, ep, tp):
    seed, El, C, H, N, st, act, bf, tr, y2, wants = case
    inputs = _inputs(seed, ep, tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr)
    g = torch.Generator().manual_seed(seed + 1000)
    vs = [{k: torch.randn(t.shape, generator=g) for k, t in (("x", x), ("w", w), ("b", b)) if t is not None}
          for x, w, b, _ in inputs]
    return inputs, vs


def _penalty(ys, leaves, g1, g2, v, y2_used, create):
    """P = <grad of L by the leaves, v> for L = <y1, g1> (+ <y2, g2>), from one rank's share."""
    loss = (ys[0] * g1).sum()
    if y2_used:
        loss = loss + (ys[1] * g2).sum()
    names = [k for k, t in leaves.items() if t is not None and t.requires_grad]
    grads = torch.autograd.grad(loss, [leaves[k] for k in names], create_graph=create, allow_unused=True)
    return names, grads


def _rank_double_backward(ctx, cases):
    out = []
    for case in cases:
        seed, El, C, H, N, st, act, bf, tr, y2, wants = case
        inputs, vs = _penalty_inputs(case, ctx.ep, ctx.tp)
        x, wl, b, (g1, g2, _) = inputs[ctx.rank]
        leaves = {"x": x, "w": wl, "b": b}
        for k, t in leaves.items():
            if t is not None and k in wants:
                t.requires_grad_(True)
        ys = moe_mc2.npu_alltoall_allgather_bmm(
            x, _w(wl, tr), bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
            group_tp_worldsize=ctx.tp, shard_type=st, act_type=act, need_allgather_out=y2)
        names, grads = _penalty(ys, leaves, g1, g2, vs[ctx.rank], y2, True)
        graph = {k: gr is not None and gr.requires_grad for k, gr in zip(names, grads)}
        p = sum((gr * vs[ctx.rank][k]).sum() for k, gr in zip(names, grads) if gr is not None)
        # every rank takes part in the second backward (its collectives), even where its own
        # penalty share has no graph
        torch.autograd.backward([p if p.requires_grad else torch.zeros((), requires_grad=True)])
        out.append(({k: (None if t is None or t.grad is None else t.grad) for k, t in leaves.items()}, graph))
    return out


def _reference_double_backward(case, ep, tp):
    seed, El, C, H, N, st, act, bf, tr, y2, wants = case
    inputs, vs = _penalty_inputs(case, ep, tp)
    xs = [x.double().requires_grad_("x" in wants) for x, _, _, _ in inputs]
    ws = [w.double().requires_grad_("w" in wants) for _, w, _, _ in inputs]
    bs = [None if b is None else b.double().requires_grad_("b" in wants) for _, _, b, _ in inputs]
    ys = reference.forward(xs, [_w(w, tr) for w in ws], bs if bf else None, ep=ep, tp=tp, shard_type=st,
                           act_type=act, need_allgather_out=True)
    loss = 0
    for r, (_, _, _, (g1, g2, _)) in enumerate(inputs):
        loss = loss + (ys[r][0] * g1.double()).sum()
        if y2:
            loss = loss + (ys[r][1] * g2.double()).sum()
    leaves = [(r, k, t) for r in range(ep * tp) for k, t in (("x", xs[r]), ("w", ws[r]), ("b", bs[r]))
              if t is not None and t.requires_grad]
    grads = torch.autograd.grad(loss, [t for _, _, t in leaves], create_graph=True)
    graph = [{} for _ in range(ep * tp)]
    for (r, k, _), gr in zip(leaves, grads):
        graph[r][k] = gr.requires_grad
    p = sum((gr * vs[r][k].double()).sum() for (r, k, _), gr in zip(leaves, grads))
    if p.requires_grad:
        p.backward()
    return [{"x": xs[r].grad, "w": ws[r].grad, "b": None if bs[r] is None else bs[r].grad} for r in range(ep * tp)], graph


def test_double_backward_matches_single_process_autograd(world_2x2):
    results = world_2x2.run(_rank_double_backward, DOUBLE_CASES)
    for n, case in enumerate(DOUBLE_CASES):
        want, want_graph = _reference_double_backward(case, 2, 2)
        for r in range(4):
            grads, graph = results[r][n]
            # a first-order gradient carries a graph exactly where single-process autograd's does
            # (none is silently detached)
            assert graph == want_graph[r], f"case {case} rank {r}: graphs {graph}, reference {want_graph[r]}"
            assert any(graph.values()), case  # each case exercises a second derivative
            for k in ("x", "w", "b"):  # no path on one side and a zero on the other are the same
                if (want[r][k] is None) != (grads[k] is None):
                    ref = want[r][k] if want[r][k] is not None else grads[k]
                    if want[r][k] is None:
                        want[r][k] = torch.zeros_like(ref, dtype=torch.float64)
                    else:
                        grads[k] = torch.zeros_like(ref)
            _compare(grads, want[r], f"double backward case {case} rank {r}")


def _rank_adjoint_double_backward(ctx, case):
    seed, El, C, H, N, st, bf, tr = case
    x, wl, b, (g,) = _inputs(seed, ctx.ep, ctx.tp, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr,
                             adjoint=True)[ctx.rank]
    x.requires_grad_(True)
    wl.requires_grad_(True)
    gen = torch.Generator().manual_seed(seed + ctx.rank)
    vx, vw = torch.randn(x.shape, generator=gen), torch.randn(wl.shape, generator=gen)
    y = moe_mc2.npu_bmm_reducescatter_alltoall(
        x, _w(wl, tr), bias=b, group_ep=ctx.ep_group, group_ep_worldsize=ctx.ep, group_tp=ctx.tp_group,
        group_tp_worldsize=ctx.tp, shard_type=st)
    gx, gw = torch.autograd.grad((y * g).sum(), [x, wl], create_graph=True)
    ((gx * vx).sum() + (gw * vw).sum()).backward()
    return x.grad, wl.grad, vx, vw


def test_adjoint_double_backward(world_2x2):
    case = (81, 2, 4, 6, 5, 1, 2, True)
    seed, El, C, H, N, st, bf, tr = case
    res = world_2x2.run(_rank_adjoint_double_backward, case)
    inputs = _inputs(seed, 2, 2, El=El, C=C, H=H, N=N, st=st, bias_form=bf, transposed=tr, adjoint=True)
    xs = [x.double().requires_grad_(True) for x, _, _, _ in inputs]
    ws = [w.double().requires_grad_(True) for _, w, _, _ in inputs]
    outs = reference_adjoint.adjoint(xs, [_w(w, tr) for w in ws], [b for _, _, b, _ in inputs], ep=2, tp=2,
                                     shard_type=st, dtype=torch.float64)
    loss = sum((o * inp[3][0].double()).sum() for o, inp in zip(outs, inputs))
    grads = torch.autograd.grad(loss, xs + ws, create_graph=True)
    p = sum((gx * r[2].double()).sum() + (gw * r[3].double()).sum() for gx, gw, r in zip(grads[:4], grads[4:], res))
    p.backward()
    for r in range(4):
        _compare({"x": res[r][0], "w": res[r][1], "b": None}, {"x": xs[r].grad, "w": ws[r].grad, "b": None},
                 f"adjoint double backward rank {r}")
