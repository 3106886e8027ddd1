"""Every rank agrees or every rank raises: one field perturbed on one rank at a time.

Without the agreement these calls return garbage on some ranks, abort a rank inside gloo, or
leave peers waiting in their first collective; with it every rank raises the same error before
any data moves, and the world takes the next valid call.
"""
from __future__ import annotations

import torch

from agreement_cases import PERTURB, base, run_adjoint_mismatch, run_one_rank_mismatches, run_swapped_groups, \
    run_transposed_on_one_rank
from moe_mc2 import reference


def _world_reference(ws):
    """y1, y2 of the valid base call on every rank, from the single-process reference."""
    from types import SimpleNamespace

    calls = [base(SimpleNamespace(rank=r, ep=2, tp=2, ep_group=None, tp_group=None)) for r in range(4)]
    return reference.forward([c[0] for c in calls], [c[1] for c in calls], [c[2]["bias"] for c in calls], ep=2,
                             tp=2, shard_type=1, act_type="gelu", need_allgather_out=True)


def test_one_rank_differs_every_rank_raises(world_2x2):
    names = [(name, n % 4) for n, name in enumerate(PERTURB)]  # each case on another rank
    names += [("C", r) for r in range(4)] + [("C = 0", r) for r in range(4)]  # and two of them on every rank
    results = world_2x2.run(run_one_rank_mismatches, names)
    for k, (name, bad) in enumerate(names):
        outcomes = [res[0][k] for res in results]
        _, rule, text = PERTURB[name]
        for rank, (_, _, cls, rule_id, message, _) in enumerate(outcomes):
            assert cls is not None, f"{name} on rank {bad}: rank {rank} returned normally"
            assert rule_id == rule, f"{name} on rank {bad}: rank {rank} raised {cls} [{rule_id}]: {message}"
            assert text in message, f"{name}: {message!r} does not name {text!r}"
            assert f"rank {bad}" in message or f"ranks [{bad}]" in message or f"rank [{bad}]" in message, message
        # the same error on every rank
        assert len({(o[2], o[3], o[4]) for o in outcomes}) == 1, [o[4] for o in outcomes]
    want = _world_reference(None)
    for rank, (_, y1, y2) in enumerate(results):  # the world still works, and right
        assert torch.equal(y2, want[rank][1])
        assert torch.allclose(y1.float(), want[rank][0].float(), rtol=2e-2, atol=2e-2)


def test_disagreement_names_the_field_and_the_ranks(world_2x2):
    results = world_2x2.run(run_one_rank_mismatches, [("C", 2)])
    message = results[0][0][0][4]
    assert "the ranks disagree on x.shape" in message
    assert "(4, 3, 8) on ranks [0, 1, 3]" in message and "(4, 4, 8) on rank [2]" in message
    assert "[rule ranks.agree]" in message


def test_rejected_call_names_rank_rule_and_value(world_2x2):
    results = world_2x2.run(run_one_rank_mismatches, [("C = 0", 3)])
    message = results[1][0][0][4]
    assert message.startswith("npu_alltoall_allgather_bmm: x=(4, 0, 8) breaks rule [C.positive]")
    assert "on rank 3 (i=1, t=1)" in message


def test_swapped_groups_on_one_rank(world_2x2):
    for bad in (0, 1):
        outcomes = world_2x2.run(run_swapped_groups, bad)
        for rank, (cls, rule_id, message) in enumerate(outcomes):
            assert cls is not None, f"groups swapped on rank {bad}: rank {rank} returned normally"
            assert rule_id in ("ranks.agree", "ranks.grid"), (rank, message)


def test_adjoint_mismatch(world_2x2):
    outcomes = world_2x2.run(run_adjoint_mismatch, 1)
    assert len(set(outcomes)) == 1, outcomes
    cls, rule_id, message = outcomes[0]
    assert rule_id == "ranks.agree" and "x.shape" in message and "npu_bmm_reducescatter_alltoall" in message


def test_weight_layout_may_differ(world_2x2):
    ys = world_2x2.run(run_transposed_on_one_rank, 2)
    want = _world_reference(None)
    for rank, y1 in enumerate(ys):
        assert torch.allclose(y1.float(), want[rank][0].float(), rtol=2e-2, atol=2e-2)
