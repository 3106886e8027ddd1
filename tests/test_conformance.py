"""op_proto REG_OP, op_host OpDef, the msOpGen description and contract/names.py agree exactly, and
all of them are CANN's built-in AlltoAllAllGatherBatchMatMul field by field (the package installs
in its place, so nothing a caller sees may differ).

The C++ files are read with regexes over the standard CANN syntax (tests/support/cann_sources.py).
CANN's declarations are restated below from hicann/ops-transformer
(mc2/allto_all_all_gather_batch_mat_mul: op_graph/*_proto.h, op_host/*_def.cpp); with
MOE_MC2_OPS_TRANSFORMER pointing at a checkout (or the git dir) of that repository the
restatement is itself checked against the real files. Missing files fail (not skip): the
package is not shippable without them.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch

from moe_mc2.contract import rules
from moe_mc2.contract.names import GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OPTIONAL_INPUTS, GE_OUTPUTS
from support.cann_sources import ROOT, files_declaring, parse_op_def, parse_reg_op  # noqa: F401 (re-exported)

_DT = {"DT_FLOAT16": torch.float16, "DT_BF16": torch.bfloat16, "DT_FLOAT": torch.float32}


def _files(pattern: str, what: str) -> list:
    found = files_declaring(pattern, GE_OP_TYPE)
    if not found:
        pytest.fail(f"no {what} declaring {GE_OP_TYPE} under {os.path.join(ROOT, pattern)}")
    return found


# ---- CANN's built-in op, restated ---------------------------------------------------------------

FP16, BF16, FP32 = "DT_FLOAT16", "DT_BF16", "DT_FLOAT"
CANN_REG_OP = {
    "inputs": [("x", "INPUT", (FP16, BF16)), ("weight", "INPUT", (FP16, BF16)),
               ("bias", "OPTIONAL_INPUT", (FP16, FP32, BF16))],
    "outputs": [("y1", "OUTPUT", (FP16, BF16)), ("y2", "OUTPUT", (FP16, BF16)), ("y3", "OUTPUT", (FP16, BF16))],
    "attrs": [("group_ep", "str", True, None), ("group_tp", "str", True, None),
              ("ep_world_size", "int", True, None), ("tp_world_size", "int", True, None),
              ("x_shard_type", "int", False, 0), ("act_type", "int", False, 0),
              ("transpose_weight", "bool", False, False), ("output_y2_flag", "bool", False, False),
              ("output_y3_flag", "bool", False, False)],
}
_COLS = (FP16, BF16, BF16)
CANN_OP_DEF = {
    "inputs": [("x", "REQUIRED", _COLS), ("weight", "REQUIRED", _COLS), ("bias", "OPTIONAL", (FP16, FP32, BF16))],
    "outputs": [("y1", "REQUIRED", _COLS), ("y2", "OPTIONAL", _COLS), ("y3", "OPTIONAL", _COLS)],
    "attrs": CANN_REG_OP["attrs"],
    "hccl_groups": ("group_ep", "group_tp"),
    "contiguous": {"x": "AutoContiguous", "weight": "AutoContiguous", "bias": "AutoContiguous"},
    "config": {"DynamicCompileStaticFlag": True, "DynamicFormatFlag": True, "DynamicRankSupportFlag": True,
               "DynamicShapeSupportFlag": True, "NeedCheckSupportFlag": False, "PrecisionReduceFlag": True,
               "aclnnSupport.value": "support_aclnn", "jitCompile.flag": "static_false",
               "multiKernelSupportDynamicGraph.value": "multi_kernel"},
    "socs": ["ascend910_93"],
}
CANN_FILES = {
    "reg_op": "mc2/allto_all_all_gather_batch_mat_mul/op_graph/allto_all_all_gather_batch_mat_mul_proto.h",
    "op_def": "mc2/allto_all_all_gather_batch_mat_mul/op_host/allto_all_all_gather_batch_mat_mul_def.cpp",
}


# ---- the files ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proto():
    files = _files("op_proto/**/*.h", "op_proto header")
    return parse_reg_op("\n".join(open(p, encoding="utf-8").read() for p in files), GE_OP_TYPE)


@pytest.fixture(scope="module")
def opdef():
    files = [p for p in _files("op_host/**/*.cpp", "op_host source") if "OpDef" in open(p, encoding="utf-8").read()]
    if not files:
        pytest.fail(f"no op_host/*.cpp defines `class {GE_OP_TYPE} : public OpDef`")
    defs = [p for p in files if p.endswith("_def.cpp")] or files
    return parse_op_def(open(defs[0], encoding="utf-8").read(), GE_OP_TYPE)


EXPECTED_ATTRS = [(a.name, a.kind, a.required, None if a.required else a.default) for a in GE_ATTRS]


# ---- against names.py and the contract ------------------------------------------------------------------

def test_proto_inputs(proto):
    assert [n for n, _, _ in proto["inputs"]] == list(GE_INPUTS)
    kinds = {n: k for n, k, _ in proto["inputs"]}
    assert {n for n, k in kinds.items() if k == "OPTIONAL_INPUT"} == set(GE_OPTIONAL_INPUTS)
    assert {n for n, k in kinds.items() if k == "INPUT"} == set(GE_INPUTS) - set(GE_OPTIONAL_INPUTS)


def test_proto_outputs(proto):
    # GE prototypes have no optional outputs; the OpDef makes y2/y3 optional
    assert [(n, k) for n, k, _ in proto["outputs"]] == [(n, "OUTPUT") for n in GE_OUTPUTS]


def test_proto_attrs_names_kinds_requiredness_defaults_and_order(proto):
    assert proto["attrs"] == EXPECTED_ATTRS


def test_proto_dtypes_cover_spec(proto):
    types = {n: set(t) for n, _, t in proto["inputs"] + proto["outputs"]}
    for name in ("x", "weight", "y1", "y2", "y3"):
        assert types[name] == {"DT_FLOAT16", "DT_BF16"}, name
    for x_dtype in rules.NPU_DTYPES:  # every bias the rules accept is declared
        assert {v: k for k, v in _DT.items()}[rules.bias_dtype_for(x_dtype)] in types["bias"]


def test_opdef_inputs(opdef):
    assert [n for n, _, _ in opdef["inputs"]] == list(GE_INPUTS)
    assert {n for n, p, _ in opdef["inputs"] if p == "OPTIONAL"} == set(GE_OPTIONAL_INPUTS)
    assert {n for n, p, _ in opdef["inputs"] if p == "REQUIRED"} == set(GE_INPUTS) - set(GE_OPTIONAL_INPUTS)


def test_opdef_outputs_y2_y3_optional(opdef):
    assert [(n, p) for n, p, _ in opdef["outputs"]] == [("y1", "REQUIRED"), ("y2", "OPTIONAL"), ("y3", "OPTIONAL")]
    assert [n for n, _, _ in opdef["outputs"]] == list(GE_OUTPUTS)


def test_opdef_attrs_names_kinds_requiredness_defaults_and_order(opdef):
    # Order matters beyond GE: the generated aclnn API takes attributes in OpDef order, and
    # integration/csrc/aag_bmm_aclnn.cpp calls it in GE_ATTRS order.
    got = [(n, k, r, None if r else d) for n, k, r, d in opdef["attrs"]]
    assert got == EXPECTED_ATTRS


def test_opdef_dtype_columns(opdef):
    cols = {n: t for n, _, t in opdef["inputs"] + opdef["outputs"]}
    width = len(cols["x"])
    assert width > 0 and all(len(t) == width for t in cols.values()), cols
    columns = set()
    for k in range(width):
        x_dt = _DT[cols["x"][k]]
        for name in ("weight", "y1", "y2", "y3"):
            assert _DT[cols[name][k]] == x_dt, (name, k)
        columns.add((x_dt, _DT[cols["bias"][k]]))
    # every (x, bias) pair the rules accept has its column ...
    accepted = {(d, rules.bias_dtype_for(d)) for d in rules.NPU_DTYPES}
    assert accepted <= columns
    # ... and the one more column CANN declares (bf16 bias for bf16 x) is one the rules reject
    assert columns - accepted == {(torch.bfloat16, torch.bfloat16)}
    assert rules.bias_dtype_for(torch.bfloat16) != torch.bfloat16


def test_opdef_hccl_groups_are_the_group_attrs(opdef):
    if opdef["hccl_groups"] is None:
        pytest.fail("OpDef declares no MC2().HcclGroup(...): the kernel would get no communicators")
    assert set(opdef["hccl_groups"]) == {a.name for a in GE_ATTRS if a.kind == "str"}


def test_opdef_declares_dynamic_shape_and_rank(opdef):
    assert opdef["config"]["DynamicShapeSupportFlag"] is True
    assert opdef["config"]["DynamicRankSupportFlag"] is True


def test_proto_and_opdef_agree(proto, opdef):
    assert [n for n, _, _ in proto["inputs"]] == [n for n, _, _ in opdef["inputs"]]
    assert [n for n, _, _ in proto["outputs"]] == [n for n, _, _ in opdef["outputs"]]
    assert [a[:3] for a in proto["attrs"]] == [a[:3] for a in opdef["attrs"]]
    for (n, _, reg), (_, _, cols) in zip(proto["inputs"] + proto["outputs"], opdef["inputs"] + opdef["outputs"]):
        assert set(cols) == set(reg), n  # the REG_OP list is the set of the OpDef's column


# ---- against CANN's built-in op -----------------------------------------------------------------

def test_reg_op_is_cann_builtin(proto):
    assert proto == CANN_REG_OP


def test_opdef_is_cann_builtin(opdef):
    assert opdef == CANN_OP_DEF


def _ops_transformer_text(path: str) -> str:
    source = os.environ.get("MOE_MC2_OPS_TRANSFORMER")
    if not source:
        pytest.skip("MOE_MC2_OPS_TRANSFORMER (a checkout or git dir of hicann/ops-transformer) is not set")
    if os.path.isfile(os.path.join(source, path)):
        return open(os.path.join(source, path), encoding="utf-8").read()
    return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


def test_restated_cann_declarations_are_cann_sources():
    assert parse_reg_op(_ops_transformer_text(CANN_FILES["reg_op"]), GE_OP_TYPE) == CANN_REG_OP
    assert parse_op_def(_ops_transformer_text(CANN_FILES["op_def"]), GE_OP_TYPE) == CANN_OP_DEF


# ---- the msOpGen description the package project is generated from ------------------------------

_MSOPGEN_DT = {"fp16": "DT_FLOAT16", "bf16": "DT_BF16", "float": "DT_FLOAT"}
_MSOPGEN_ATTR = {"string": "str", "int": "int", "bool": "bool"}


def test_msopgen_description_is_the_opdef(opdef):
    (desc,) = json.load(open(os.path.join(ROOT, "op_host", "msopgen", "alltoall_allgather_bmm.json"), encoding="utf-8"))
    assert desc["op"] == GE_OP_TYPE
    for key, ours in (("input_desc", opdef["inputs"]), ("output_desc", opdef["outputs"])):
        got = [(d["name"], d["param_type"].upper(), tuple(_MSOPGEN_DT[t] for t in d["type"])) for d in desc[key]]
        assert got == list(ours), key
        assert all(d["format"] == ["ND"] * len(d["type"]) for d in desc[key]), key
    attrs = []
    for a in desc["attr"]:
        required = a["param_type"] == "required"
        default = None if required else json.loads(a["default_value"])
        attrs.append((a["name"], _MSOPGEN_ATTR[a["type"]], required, default))
    assert attrs == opdef["attrs"]


# ---- the parsers themselves, on known text (so a parser bug cannot pass silently) ---------------

_SAMPLE_PROTO = """
// comment .INPUT(ghost, TensorType({DT_INT8}))
REG_OP(Demo)
    .INPUT(a, TensorType({DT_FLOAT16, DT_BF16}))
    .OPTIONAL_INPUT(b, TensorType({DT_FLOAT}))
    .OUTPUT(c, TensorType({DT_FLOAT16}))
    .REQUIRED_ATTR(g, String)
    .ATTR(n, Int, 3)
    .ATTR(t, Bool, false)
    .OP_END_FACTORY_REG(Demo)
"""

_SAMPLE_DEF = """
namespace ops {
class Demo : public OpDef {
public:
    explicit Demo(const char *name) : OpDef(name)
    {
        this->Input("a")
            .ParamType(REQUIRED)
            .DataType({ge::DT_FLOAT16, ge::DT_BF16})
            .AutoContiguous();
        this->Input("b").ParamType(OPTIONAL).DataType({ge::DT_FLOAT16, ge::DT_FLOAT}).IgnoreContiguous();
        this->Output("c").ParamType(OPTIONAL).DataType({ge::DT_FLOAT16, ge::DT_BF16});
        this->Attr("g").AttrType(REQUIRED).String();
        this->Attr("n").AttrType(OPTIONAL).Int(3);
        this->Attr("t").AttrType(OPTIONAL).Bool(false);
        OpAICoreConfig cfg;
        cfg.DynamicShapeSupportFlag(true)
            .NeedCheckSupportFlag(false)
            .ExtendCfgInfo("jitCompile.flag", "static_false");  // a comment
        this->AICore().AddConfig("ascend910_93", cfg);
        this->MC2().HcclGroup({"g"});
    }
};
OP_ADD(Demo);
}
"""


def test_parsers_read_the_standard_syntax():
    p = parse_reg_op(_SAMPLE_PROTO, "Demo")
    assert p["inputs"] == [("a", "INPUT", ("DT_FLOAT16", "DT_BF16")), ("b", "OPTIONAL_INPUT", ("DT_FLOAT",))]
    assert p["outputs"] == [("c", "OUTPUT", ("DT_FLOAT16",))]
    assert p["attrs"] == [("g", "str", True, None), ("n", "int", False, 3), ("t", "bool", False, False)]
    d = parse_op_def(_SAMPLE_DEF, "Demo")
    assert d["inputs"] == [("a", "REQUIRED", ("DT_FLOAT16", "DT_BF16")), ("b", "OPTIONAL", ("DT_FLOAT16", "DT_FLOAT"))]
    assert d["outputs"] == [("c", "OPTIONAL", ("DT_FLOAT16", "DT_BF16"))]
    assert d["attrs"] == [("g", "str", True, None), ("n", "int", False, 3), ("t", "bool", False, False)]
    assert d["hccl_groups"] == ("g",)
    assert d["contiguous"] == {"a": "AutoContiguous", "b": "IgnoreContiguous"}
    assert d["config"] == {"DynamicShapeSupportFlag": True, "NeedCheckSupportFlag": False,
                           "jitCompile.flag": "static_false"}
    assert d["socs"] == ["ascend910_93"]
    with pytest.raises(AssertionError):
        parse_reg_op(_SAMPLE_PROTO, "Other")
