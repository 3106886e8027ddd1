"""The reference against the contract's collective description, and the tile planner's properties."""
import dataclasses
import itertools

import pytest
import torch

from moe_mc2 import reference
from moe_mc2.contract.rules import check_forward
from moe_mc2.planning.tiles import cost_model, plan_forward, simulate


def _collective_route(xs, ep, tp, shard_type, rank):
    """y2 the way the contract describes the collectives: all_to_all over ep, permute, all_gather over tp, permute."""
    i, t = rank % ep, rank // ep
    E, d1, d2 = xs[0].shape
    El = E // ep

    def after_a2a(s):  # rank (i, s) receives block i of every ep peer j: (ep, El, d1, d2)
        return torch.stack([xs[s * ep + j].view(ep, El, d1, d2)[i] for j in range(ep)])

    gathered = torch.stack([after_a2a(s) for s in range(tp)])  # (tp, ep, El, d1, d2)
    if shard_type == 1:
        return gathered.permute(2, 1, 0, 3, 4).reshape(El, ep * tp * d1, d2)
    return gathered.permute(2, 1, 3, 0, 4).reshape(El, ep * d1, tp * d2)


@pytest.mark.parametrize("ep,tp,shard_type", list(itertools.product((2, 4), (2, 4), (0, 1))))
def test_reference_y2_matches_the_collective_description(ep, tp, shard_type):
    g = torch.Generator().manual_seed(ep * 10 + tp)
    xs = [torch.randn(2 * ep, 3, 4, generator=g) for _ in range(ep * tp)]
    ws = [torch.randn(2, 4 if shard_type == 1 else 4 * tp, 5, generator=g) for _ in range(ep * tp)]
    out = reference.forward(xs, ws, None, ep=ep, tp=tp, shard_type=shard_type, need_allgather_out=True)
    for r in range(ep * tp):
        assert torch.equal(out[r][1], _collective_route(xs, ep, tp, shard_type, r))
        assert torch.allclose(out[r][0].double(), out[r][1].double() @ ws[r].double(), atol=1e-5)


def test_reference_activation_matches_torch_gelu_tanh():
    x = [torch.randn(4, 2, 3) for _ in range(4)]
    w = [torch.eye(3).expand(2, 3, 3).clone() for _ in range(4)]
    y = reference.forward(x, w, None, ep=2, tp=2, shard_type=1, act_type="gelu", rounded=False)[0][0]
    y2 = reference.gathered_input(x, 0, 2, 2, 1).double()
    assert torch.allclose(y, torch.nn.functional.gelu(y2, approximate="tanh"), atol=1e-6)


def _shapes(ep=2, tp=2, E=8, C=512, H=1024, M=2048, shard_type=1):
    x = (E, C // tp, H) if shard_type == 1 else (E, C, H // tp)
    return check_forward(x, torch.bfloat16, (E // ep, H, M // tp), torch.bfloat16, None, None, group_ep="a", ep=ep,
                         group_tp="b", tp=tp, shard_type=shard_type, act_type=0)


@pytest.mark.parametrize("shard_type", [0, 1])
@pytest.mark.parametrize("forced,experts", [(None, None), (1, None), (3, None), (7, None), (1000, None),
                                            (3, 2), (1, 5)])
def test_plan_covers_every_row_and_expert_exactly_once(shard_type, forced, experts):
    s = _shapes(E=12, C=70, H=64, M=64, shard_type=shard_type)
    plan = plan_forward(s, 2, cost_model("gloo", "float16", 4), upcast_weight=True,
                        weight_budget_bytes=64 * 32 * 4 * 2, tiles=forced, expert_tiles=experts)
    hits = torch.zeros(s.El, s.x_rows, dtype=torch.int32)
    for tile in plan.tiles:
        hits[tile.e0:tile.e1, tile.c0:tile.c1] += 1
    assert bool((hits == 1).all())
    assert len(plan.expert_blocks) == 3  # the fp32 weight copy is bounded by the budget
    assert plan.local_first == (shard_type == 1)
    for tile in plan.tiles:  # a tile never straddles two expert blocks (their weights differ)
        assert any(b0 <= tile.e0 and tile.e1 <= b1 for b0, b1 in plan.expert_blocks)
    if not forced:  # the search includes one tile, whose makespan is at most the no-overlap sum
        assert plan.predicted_s <= plan.serial_s + 1e-12
    else:
        chunks = len(range(0, s.x_rows, -(-s.x_rows // min(forced, s.x_rows))))
        assert plan.count == 3 * min(experts or 1, 2) * chunks  # 3 blocks of 2 experts


def test_plan_picks_more_tiles_when_communication_dominates():
    s = _shapes()
    fast = cost_model("gloo", "bfloat16", 4)
    slow_links = dataclasses.replace(fast, a2a_bytes_per_s=fast.a2a_bytes_per_s / 50,
                                     ag_bytes_per_s=fast.ag_bytes_per_s / 50, latency_s=1e-6)
    p_fast, p_slow = plan_forward(s, 2, fast), plan_forward(s, 2, slow_links)
    assert p_slow.count > p_fast.count >= 1
    # the chosen plan is the best of the searched ones
    for t in (1, 2, 4, 8, 16):
        forced = plan_forward(s, 2, slow_links, tiles=t)
        assert p_slow.predicted_s <= forced.predicted_s + 1e-12


def test_plan_cuts_experts_before_rows_when_weights_are_large():
    """Row chunks re-read the block's weights in every GEMM; expert parts do not."""
    s = _shapes(E=16, C=64, H=4096, M=8192)
    cost = cost_model("gloo", "bfloat16", 4)
    slow = dataclasses.replace(cost, a2a_bytes_per_s=cost.a2a_bytes_per_s / 100,
                               ag_bytes_per_s=cost.ag_bytes_per_s / 100, latency_s=1e-6)
    plan = plan_forward(s, 2, slow)
    assert plan.count > 1
    assert len({(t.e0, t.e1) for t in plan.tiles}) > 1  # it cut along experts
    rows_only = plan_forward(s, 2, slow, tiles=plan.count)
    assert plan.predicted_s < rows_only.predicted_s


def test_simulation_no_overlap_sum_is_the_sum_of_parts():
    s = _shapes(shard_type=0)
    cost = cost_model("gloo", "bfloat16", 4)
    predicted, serial = simulate(s, [(0, s.El)], [(0, s.x_rows)], 2, cost, local_first=False)
    assert predicted == pytest.approx(serial)  # one tile, nothing to overlap with


@pytest.mark.parametrize("act", [0, 1, 2, 3, 4])
def test_activations_are_spec_formulas(act):
    from moe_mc2.contract import activations

    y = torch.linspace(-12, 12, 4001, dtype=torch.float64)
    spec = {0: y, 1: y / (1 + torch.exp(-1.59576912 * (y + 0.044715 * y ** 3))), 2: y * torch.sigmoid(y),
            3: torch.maximum(y, torch.zeros_like(y)), 4: y / (1 + torch.exp(-1.702 * y))}[act]
    assert torch.allclose(activations.apply(y, act), spec, rtol=1e-12, atol=1e-12)
    for dtype in (torch.float16, torch.bfloat16):  # rounded once from fp32 into the output dtype
        out = torch.empty(y.shape, dtype=dtype)
        activations.apply_into(y.float(), act, out)
        assert torch.equal(out, spec.float().to(dtype)) or \
            float((out.double() - spec).abs().max()) <= 2.0 ** -7 * float(spec.abs().max())
    # the derivative is the derivative of the formula
    if act != 3:
        yy = y[::40].clone().requires_grad_(True)
        activations.apply(yy, act).sum().backward()
        assert torch.allclose(activations.derivative(y[::40], act), yy.grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", ["gloo", "nccl", "hccl"])
def test_plan_is_a_function_of_the_call_not_of_the_host(monkeypatch, backend):
    """Ranks on hosts with different core counts must plan alike (else they corrupt each other)."""
    import os

    from moe_mc2.runtime import adjoint
    from moe_mc2.contract.adjoint_rules import check_adjoint

    s = check_forward((8, 256, 1024), torch.bfloat16, (4, 1024, 512), torch.bfloat16, None, None, group_ep="a", ep=2,
                      group_tp="b", tp=2, shard_type=1, act_type=1)
    sa = check_adjoint((4, 512, 512), torch.bfloat16, (4, 512, 1024), torch.bfloat16, None, None, group_ep="a", ep=2,
                       group_tp="b", tp=2, shard_type=1)
    plans = []
    for cores in (1, 2, 7, 64, 256):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        plan_forward.cache_clear()
        adjoint.plan_tiles.cache_clear()
        cost = cost_model(backend, "bfloat16", 4)
        f = plan_forward(s, 2, cost)
        plans.append((f.fingerprint, [(t.e0, t.e1, t.c0, t.c1) for t in f.tiles],
                      adjoint.plan_tiles(sa, torch.bfloat16, backend).tiles))
    assert all(p == plans[0] for p in plans), plans
