"""The Python validator and shape inference against the vectors the C++ core is tested with."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import moe_mc2  # noqa: F401  (registers the op)
from moe_mc2.contract import rules
from moe_mc2.contract.errors import ContractTypeError, ContractValueError
from vectors_io import case_kwargs, dtype, load

VALID = load("forward_valid.json")
INVALID = load("forward_invalid.json")
RULE_IDS = {"shard_type.value", "act_type.value", "ep.world_size", "tp.world_size", "group.name", "group.distinct",
            "x.rank", "x.dtype", "weight.rank", "weight.dtype", "E.range", "E.multiple", "weight.experts",
            "H.range", "weight.hidden", "N.range", "C.positive", "bias.rank", "bias.shape", "bias.dtype"}


def _expected(case, name):
    return tuple(case["expect"][name])


def test_vectors_cover_every_rule_and_both_shard_types():
    assert {c["rule"] for c in INVALID} == RULE_IDS
    assert {c["shard_type"] for c in VALID} == {0, 1}
    assert len(VALID) >= 20
    # groups of one rank: valid on the portable runtime, refused on the NPU
    assert {(c["ep"], c["tp"]) for c in VALID if not c["npu"]} >= {(1, 1), (1, 2), (2, 1)}


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_valid_case_shapes(case):
    k = case_kwargs(case)
    s = rules.check_forward(**k)
    want_y2, want_y3 = rules.output_flags(case["y2_flag"], case["y3_flag"], case["act_type"])
    assert s.y1 == _expected(case, "y1")
    assert (s.y2 if want_y2 else (0, 0, 0)) == _expected(case, "y2")
    assert (s.y1 if want_y3 else (0, 0, 0)) == _expected(case, "y3")
    if not case["npu"]:  # portable-only (float32 x, a group of 1): the NPU rule set rejects it
        err = {"ValueError": ContractValueError, "TypeError": ContractTypeError}[case.get("npu_error", "TypeError")]
        with pytest.raises(err) as e:
            rules.check_forward(**k, portable=False)
        assert (e.value.rule_id, e.value.arg) == (case.get("npu_rule", "x.dtype"), case.get("npu_arg", "x"))
        assert "on the NPU" in str(e.value)


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_case_names_rule_and_argument(case):
    err = {"ValueError": ContractValueError, "TypeError": ContractTypeError}[case["error"]]
    with pytest.raises(err) as e:
        rules.check_forward(**case_kwargs(case), portable=not case["npu"])
    assert (e.value.rule_id, e.value.arg) == (case["rule"], case["arg"])
    assert case["arg"] in str(e.value) and case["rule"] in str(e.value)


def _fake_tensors(case, mode):
    k = case_kwargs(case)
    with mode:
        x = torch.empty(k["x_shape"], dtype=k["x_dtype"])
        w_shape = k["weight_shape"]
        if case["transpose_weight"]:
            w = torch.empty((w_shape[0], w_shape[2], w_shape[1]), dtype=k["weight_dtype"]).transpose(1, 2)
        else:
            w = torch.empty(w_shape, dtype=k["weight_dtype"])
        b = None if case["bias"] is None else torch.empty(tuple(case["bias"]), dtype=dtype(case["bias_dtype"]))
    return x, w, b


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_fake_kernel_infers_vector_shapes(case):
    mode = FakeTensorMode()
    x, w, b = _fake_tensors(case, mode)
    assert rules.is_transposed_weight(w) == case["transpose_weight"]
    with mode:
        y1, y2, y3 = torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            x, w, bias=b, group_ep=case["group_ep"], group_ep_worldsize=case["ep"], group_tp=case["group_tp"],
            group_tp_worldsize=case["tp"], shard_type=case["shard_type"], act_type=case["act_type"],
            need_allgather_out=case["y2_flag"], need_activation_feature=case["y3_flag"])
    assert [tuple(y.shape) for y in (y1, y2, y3)] == [_expected(case, n) for n in ("y1", "y2", "y3")]
    assert {y.dtype for y in (y1, y2, y3)} == {x.dtype}
