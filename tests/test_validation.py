"""Every rule of docs/contract.md broken once, on every rank: a clear exception before any collective, and the
world still works afterwards (a hang here would mean a rank had started communicating)."""
import types

import pytest

from validation_cases import bad_calls, run_bad_calls


class _FakeCtx(types.SimpleNamespace):
    pass


@pytest.mark.parametrize("world_name", ["world_2x2", "world_4x2"])
def test_every_rule_raises_on_every_rank(world_name, request):
    world = request.getfixturevalue(world_name)
    results = world.run(run_bad_calls)
    ctx = _FakeCtx(ep=world.ep, tp=world.tp, group_ep="ep", group_tp="tp")
    cases = bad_calls(ctx)
    assert len(cases) >= 45
    for rank, res in enumerate(results):
        assert res.pop("__good__") == (2, world.ep * 3 * world.tp, 6)
        for name, etype, rule, *_ in cases:
            got = res[name]
            assert got[0] != "no exception", f"rank {rank}: {name} was accepted"
            assert got[1] == rule, f"rank {rank}: {name}: rule {got[1]!r}, want {rule!r} ({got[2]})"
            assert got[3 if etype is ValueError else 4], f"rank {rank}: {name}: {got[0]} is not a {etype.__name__}"
            message = got[2]
            assert rule in message and "npu_alltoall_allgather_bmm" in message
            # the same error on every rank (the first failing rank's, agreed on) - except where a rank
            # cannot name both of its groups and so cannot reach its peers: then each raises its own
            if rule not in ("group.name", "group.distinct", "group.exists"):
                assert got[2] == results[0][name][2], (name, got[2], results[0][name][2])
                assert "on rank 0 (i=0, t=0)" in message, message


def test_message_names_argument_value_and_rule():
    import torch

    import moe_mc2

    with pytest.raises(ValueError) as e:
        moe_mc2.npu_alltoall_allgather_bmm(torch.zeros(4, 2, 8), torch.zeros(2, 8, 4), group_ep="a",
                                           group_ep_worldsize=3, group_tp="b", group_tp_worldsize=2)
    text = str(e.value)
    assert "group_ep_worldsize=3" in text and "(1, 2, 4, 8, 16)" in text and "[ep.world_size]" in text
    # the NPU (and GE) keep CANN's sizes and say so
    from moe_mc2.contract import rules

    with pytest.raises(ValueError) as e:
        rules.check_forward((4, 2, 8), torch.float16, (4, 8, 4), torch.float16, None, None, group_ep="a", ep=1,
                            group_tp="b", tp=2, shard_type=1, act_type=0, portable=False)
    assert "(2, 4, 8, 16)" in str(e.value) and "NPU" in str(e.value) and e.value.rule_id == "ep.world_size"
