"""tests/msopst: the case file against the op_proto declaration and the contract, and its goldens on the CPU."""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moe_mc2.contract import rules
from moe_mc2.contract.names import GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OUTPUTS
from test_conformance import _files, parse_reg_op

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "msopst")
CASE_FILE = os.path.join(HERE, "AlltoAllAllGatherBatchMatMul_case.json")
CASES = json.load(open(CASE_FILE, encoding="utf-8"))

_spec = importlib.util.spec_from_file_location("aag_bmm_expect", os.path.join(HERE, "aag_bmm_expect.py"))
expect = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(expect)

_MSOPST_TYPE = {"float16": "DT_FLOAT16", "bfloat16": "DT_BF16", "float": "DT_FLOAT"}
_TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float": torch.float32}
_ATTR_TYPE = {"str": ("string", str), "int": ("int", int), "bool": ("bool", bool)}


def _type(desc):
    return desc["type"][0] if isinstance(desc["type"], list) else desc["type"]


def _attrs(case):
    return {a["name"]: a["value"] for a in case["attr"]}


def _ids():
    return [c["case_name"] for c in CASES]


# ---- the case file ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_case_names_and_attrs_follow_the_contract(case):
    assert case["op"] == GE_OP_TYPE
    assert [d["name"] for d in case["input_desc"]] == list(GE_INPUTS)
    assert [d["name"] for d in case["output_desc"]] == list(GE_OUTPUTS)
    assert [a["name"] for a in case["attr"]] == [a.name for a in GE_ATTRS]
    for a, spec in zip(case["attr"], GE_ATTRS):
        msopst_type, py_type = _ATTR_TYPE[spec.kind]
        assert a["type"] == msopst_type and type(a["value"]) is py_type, a
    assert case["calc_expect_func_file"].endswith("aag_bmm_expect.py:calc_expect_func")


@pytest.fixture(scope="module")
def proto():
    files = _files("op_proto/**/*.h", "op_proto header")
    return parse_reg_op("\n".join(open(p, encoding="utf-8").read() for p in files), GE_OP_TYPE)


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_case_matches_op_proto(case, proto):
    declared = {n: set(t) for n, _, t in proto["inputs"] + proto["outputs"]}
    kinds = {n: k for n, k, _ in proto["inputs"]}
    for d in case["input_desc"] + case["output_desc"]:
        if _type(d) == "UNDEFINED":
            assert kinds[d["name"]] == "OPTIONAL_INPUT", d["name"]
            continue
        assert _MSOPST_TYPE[_type(d)] in declared[d["name"]], d["name"]
    proto_attrs = {n: (k, req) for n, k, req, _ in proto["attrs"]}
    assert set(_attrs(case)) == set(proto_attrs)
    for a in case["attr"]:
        assert _ATTR_TYPE[proto_attrs[a["name"]][0]][0] == a["type"], a["name"]


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_case_shapes_and_dtypes_are_a_valid_call(case):
    at = _attrs(case)
    d = {x["name"]: x for x in case["input_desc"] + case["output_desc"]}
    x_dt, w_dt = _TORCH[_type(d["x"])], _TORCH[_type(d["weight"])]
    w_shape = list(d["weight"]["shape"])
    if at["transpose_weight"]:
        w_shape = [w_shape[0], w_shape[2], w_shape[1]]  # stored (El, M/tp, H) -> logical
    has_bias = _type(d["bias"]) != "UNDEFINED"
    s = rules.check_forward(d["x"]["shape"], x_dt, w_shape, w_dt,
                            d["bias"]["shape"] if has_bias else None, _TORCH[_type(d["bias"])] if has_bias else None,
                            group_ep=at["group_ep"], ep=at["ep_world_size"], group_tp=at["group_tp"],
                            tp=at["tp_world_size"], shard_type=at["x_shard_type"], act_type=at["act_type"],
                            portable=False)
    want_y2, want_y3 = rules.output_flags(at["output_y2_flag"], at["output_y3_flag"], at["act_type"])
    assert d["y1"]["shape"] == list(s.y1)
    assert d["y2"]["shape"] == (list(s.y2) if want_y2 else [0, 0, 0])
    assert d["y3"]["shape"] == (list(s.y1) if want_y3 else [0, 0, 0])
    assert {_type(d[n]) for n in GE_OUTPUTS} == {_type(d["x"])}


def test_cases_cover_the_spec_matrix():
    seen = {"shard": set(), "act": set(), "bias": set(), "dtype": set(), "transposed": set(), "y2": set(), "y3": set()}
    per_shard = {0: set(), 1: set()}
    for case in CASES:
        at = _attrs(case)
        bias = case["input_desc"][2]
        form = 0 if _type(bias) == "UNDEFINED" else len(bias["shape"])
        seen["shard"].add(at["x_shard_type"])
        seen["act"].add(at["act_type"])
        seen["bias"].add(form)
        seen["dtype"].add(_type(case["input_desc"][0]))
        seen["transposed"].add(at["transpose_weight"])
        seen["y2"].add(at["output_y2_flag"])
        seen["y3"].add(at["output_y3_flag"])
        per_shard[at["x_shard_type"]].add((at["act_type"], form))
    assert seen == {"shard": {0, 1}, "act": {0, 1, 2, 3, 4}, "bias": {0, 2, 3}, "dtype": {"float16", "bfloat16"},
                    "transposed": {False, True}, "y2": {False, True}, "y3": {False, True}}
    for shard, pairs in per_shard.items():  # every activation and bias form under each shard type
        assert {a for a, _ in pairs} == {0, 1, 2, 3, 4}, shard
        assert {f for _, f in pairs} == {0, 2, 3}, shard


# ---- the goldens --------------------------------------------------------------------------------

def _act(y, act):
    return [lambda v: v, lambda v: F.gelu(v, approximate="tanh"), F.silu, F.relu,
            lambda v: v * torch.sigmoid(1.702 * v)][act](y)


def _independent(x, w_logical, bias, at, i):
    """Symmetric world, straight from the contract's index formulas (docs/contract.md §2) (not via moe_mc2.reference)."""
    ep, tp, El = at["ep_world_size"], at["tp_world_size"], w_logical.shape[0]
    block = x[i * El:(i + 1) * El].double()
    if at["x_shard_type"] == 1:  # rows (j, s, c): the block once per (j, s)
        y2 = block.repeat(1, ep * tp, 1)
    else:  # rows (j, c), columns (s, k)
        y2 = block.repeat(1, ep, tp)
    y3 = y2 @ w_logical.double()
    if bias is not None:
        y3 = y3 + bias.double().reshape(El, 1, -1)
    return _act(y3, at["act_type"]), y2, y3


def _msopst_inputs(case, tensors):
    """What msopst hands the function: dicts with a numpy value (bf16 as float32) and the dtype."""
    out = {}
    for d in case["input_desc"]:
        t = tensors[d["name"]]
        out[d["name"]] = None if t is None else {
            "value": (t.float() if t.dtype == torch.bfloat16 else t).numpy(), "dtype": _type(d),
            "shape": d["shape"], "format": "ND"}
    return out


@pytest.mark.parametrize("case", CASES, ids=_ids())
def test_expected_data_function_on_every_rank(case):
    at = _attrs(case)
    tensors = expect.case_inputs(case)
    dtype = tensors["x"].dtype
    w_logical = tensors["weight"].transpose(1, 2) if at["transpose_weight"] else tensors["weight"]
    outs_desc = {d["name"]: d for d in case["output_desc"]}
    tol = dict(rtol=1e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=2e-3, atol=2e-3)
    for rank in range(at["ep_world_size"] * at["tp_world_size"]):
        got = expect.calc_expect_func(**_msopst_inputs(case, tensors), **at, rank=rank)
        assert len(got) == 3
        y1, y2, y3 = _independent(tensors["x"], w_logical, tensors["bias"], at, rank % at["ep_world_size"])
        for name, g, want in zip(GE_OUTPUTS, got, (y1, y2, y3)):
            assert isinstance(g, np.ndarray)
            assert list(g.shape) == outs_desc[name]["shape"], (name, rank)
            if g.size:
                ref = want.to(dtype).float()
                torch.testing.assert_close(torch.from_numpy(g).float(), ref, **tol)


def test_rank_comes_from_rank_id(monkeypatch):
    case = next(c for c in CASES if _attrs(c)["output_y2_flag"])
    at = _attrs(case)
    ins = _msopst_inputs(case, expect.case_inputs(case))
    monkeypatch.setenv("RANK_ID", "1")  # ep index 1: the other half of the experts
    from_env = expect.calc_expect_func(**ins, **at)[1]
    assert np.array_equal(from_env, expect.calc_expect_func(**ins, **at, rank=1)[1])
    assert not np.array_equal(from_env, expect.calc_expect_func(**ins, **at, rank=0)[1])


def test_materialize_writes_identical_inputs_for_every_rank(tmp_path):
    out = expect.materialize(CASE_FILE, str(tmp_path))
    cases = json.load(open(out, encoding="utf-8"))
    assert [c["case_name"] for c in cases] == _ids()
    for case in cases:
        want = expect.case_inputs(case)
        for d in case["input_desc"]:
            if want[d["name"]] is None:
                assert "value" not in d
                continue
            t = want[d["name"]]
            raw = np.fromfile(d["value"], dtype=np.int16 if t.dtype == torch.bfloat16 else t.numpy().dtype)
            back = torch.from_numpy(raw).view(t.dtype).reshape(t.shape)
            assert torch.equal(back, t), d["value"]
        assert os.path.isabs(case["calc_expect_func_file"].split(":")[0])
