"""Group arguments: ProcessGroup, c10d group name or HCCL communicator name, in eager mode."""
import pytest
import torch

import moe_mc2
from group_cases import run_three_forms
from moe_mc2.contract.errors import ContractTypeError
from moe_mc2.runtime import groups


def test_three_forms_give_the_same_results(world_2x2):
    for rank, out in enumerate(world_2x2.run(run_three_forms)):
        comm_ep, comm_tp = out["comm"]
        assert comm_ep.startswith("hcom_") and comm_tp.startswith("hcom_") and comm_ep != comm_tp
        for form in ("c10d", "hccl"):
            for a, b in zip(out[form], out["pg"]):
                assert torch.equal(a, b), (rank, form)
        assert out["resolved"] == (True, True)
        assert out["unknown"] == ("ContractValueError", "group.exists", "group_ep")
        assert out["cpu"] == ("ContractValueError", "group.exists", "group_ep")
    # ranks of one group see one communicator name; the two ep groups have different ones
    names = [out["comm"] for out in world_2x2.run(run_three_forms)]
    assert names[0][0] == names[1][0] != names[2][0] == names[3][0]  # ep groups {0, 1}, {2, 3}
    assert names[0][1] == names[2][1] != names[1][1] == names[3][1]  # tp groups {0, 2}, {1, 3}


@pytest.mark.parametrize("bad", [None, 3, 1.5, ["ep"], b"ep", True])
def test_group_argument_types(bad):
    with pytest.raises(ContractTypeError) as e:
        groups.check_arg("op", "group_tp", bad)
    assert e.value.rule_id == "group.name" and e.value.arg == "group_tp"
    # through the op, without a world: the same error, the argument and the rule named
    with pytest.raises(ContractTypeError) as e:
        moe_mc2.npu_alltoall_allgather_bmm(torch.zeros(4, 2, 8), torch.zeros(2, 8, 4), group_ep="a",
                                           group_ep_worldsize=2, group_tp=bad, group_tp_worldsize=2, shard_type=1)
    assert "[group.name]" in str(e.value) and "group_tp=" in str(e.value)


def test_names_pass_through_comm_name_without_a_world():
    assert groups.comm_name("hcom_123") == "hcom_123"
    assert groups.find("anything") is None and groups.find(None) is None
