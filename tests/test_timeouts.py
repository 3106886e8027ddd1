"""No hangs: group timeouts are honoured, a rank that never arrives is an error naming the group
on its peers, and LocalWorld reports a failing rank's own error without waiting for the others.

One dedicated 2 x 1 world with a 3 s collective timeout; it ends broken (gloo closes a group's
connections after a timeout) and closed.
"""
import time

import pytest

from moe_mc2.launch import LocalWorld
from timeout_cases import fail_or_hang, group_timeouts, one_rank_passes_none

COMM_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def short_world():
    world = LocalWorld(2, 1, comm_timeout=COMM_TIMEOUT, error_grace=2.0)
    yield world
    world.close(force=True)


def test_groups_take_the_worlds_timeout_or_the_given_one(short_world):
    for ep_s, tp_s, ep_given, tp_given in short_world.run(group_timeouts, 1.5):
        assert ep_s == tp_s == COMM_TIMEOUT  # build_ep_tp_groups() inherited init_process_group's timeout
        assert ep_given == tp_given == 1.5


def test_a_rank_that_never_arrives_is_an_error_naming_the_group(short_world):
    (cls0, rule0, msg0, t0), (cls1, rule1, msg1, t1) = short_world.run(one_rank_passes_none, 1)
    # the rank with the bad argument raises at once, with the argument, the value and the rule
    assert cls1 == "ContractTypeError" and rule1 == "group.name" and "group_ep=None" in msg1
    # its peer waited for it in the agreement for the group's timeout (not gloo's 30 minutes)
    assert cls0 == "CollectiveError", msg0
    assert "group_ep" in msg0 and "world ranks [0, 1]" in msg0 and "agreeing on the call" in msg0
    assert COMM_TIMEOUT * 0.8 <= t0 < COMM_TIMEOUT * 10, t0


def test_local_world_reports_the_failing_ranks_error_at_once(short_world):
    start = time.monotonic()
    with pytest.raises(ValueError, match="rank 1 fails on purpose") as e:
        short_world.run(fail_or_hang, 1, 120)
    assert time.monotonic() - start < 60  # the grace period (2 s), not the peer's 120 s
    assert short_world.closed
    assert "did not answer" in "".join(getattr(e.value, "__notes__", []))
