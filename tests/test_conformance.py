"""op_proto REG_OP, op_host OpDef and the converter's names (contract/names.py) agree exactly.

The C++ files are read with regexes over the standard CANN syntax
(`.INPUT(x, TensorType({...}))`, `.ATTR(name, Int, 0)`, `this->Attr("name").AttrType(OPTIONAL).Int(0)`).
Missing files fail (not skip): the package is not shippable without them.
"""
from __future__ import annotations

import glob
import os
import re

import pytest
import torch

from moe_mc2.contract import rules
from moe_mc2.contract.names import GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OPTIONAL_INPUTS, GE_OUTPUTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_KINDS = {"String": "str", "Int": "int", "Bool": "bool", "Float": "float", "ListInt": "list_int"}
_DT = {"DT_FLOAT16": torch.float16, "DT_BF16": torch.bfloat16, "DT_FLOAT": torch.float32}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _literal(text: str):
    text = text.strip().strip('"')
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _files(pattern: str, what: str) -> list:
    found = [p for p in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True))
             if GE_OP_TYPE in open(p, encoding="utf-8", errors="replace").read()]
    if not found:
        pytest.fail(f"no {what} declaring {GE_OP_TYPE} under {os.path.join(ROOT, pattern)}")
    return found


# ---- parsers ------------------------------------------------------------------------------------

def parse_reg_op(text: str, op_type: str) -> dict:
    """{'inputs': [(name, kind, dtypes)], 'outputs': [...], 'attrs': [(name, kind, required, default)]}."""
    text = _strip_comments(text)
    m = re.search(rf"REG_OP\(\s*{op_type}\s*\)(.*?)\.OP_END_FACTORY_REG\(\s*{op_type}\s*\)", text, re.S)
    if m is None:
        raise AssertionError(f"no REG_OP({op_type}) ... OP_END_FACTORY_REG({op_type}) block")
    body = m.group(1)
    out = {"inputs": [], "outputs": [], "attrs": []}
    io = re.compile(r"\.(INPUT|OPTIONAL_INPUT|DYNAMIC_INPUT|OUTPUT|DYNAMIC_OUTPUT)\(\s*(\w+)\s*,(.*?)\)\s*\)(?=\s*\.)", re.S)
    for kind, name, types in io.findall(body):
        entry = (name, kind, tuple(re.findall(r"DT_\w+", types)))
        out["outputs" if "OUTPUT" in kind else "inputs"].append(entry)
    for m_attr in re.finditer(r"\.(REQUIRED_ATTR|ATTR)\(\s*(\w+)\s*,\s*(\w+)\s*(?:,\s*([^)]*?))?\s*\)", body):
        req, name, typ, default = m_attr.groups()
        out["attrs"].append((name, _KINDS.get(typ, typ), req == "REQUIRED_ATTR",
                             None if default is None else _literal(default)))
    return out


def parse_op_def(text: str, op_type: str) -> dict:
    """Same shape as parse_reg_op, from `class <op> : public OpDef { ... this->Input(...)... }`."""
    text = _strip_comments(text)
    m = re.search(rf"class\s+{op_type}\s*:\s*public\s+OpDef\s*\{{(.*?)\n\}};", text, re.S)
    if m is None:
        raise AssertionError(f"no `class {op_type} : public OpDef` in the OpDef file")
    out = {"inputs": [], "outputs": [], "attrs": [], "hccl_groups": None}
    for stmt in m.group(1).split(";"):
        stmt = " ".join(stmt.split())
        s = re.search(r"this->(Input|Output|Attr)\(\s*\"(\w+)\"\s*\)(.*)", stmt)
        if s is None:
            g = re.search(r"HcclGroup\(\s*\{?([^})]*)\}?\s*\)", stmt)
            if g is not None:
                out["hccl_groups"] = tuple(re.findall(r"\"(\w+)\"", g.group(1)))
            continue
        what, name, rest = s.groups()
        if what in ("Input", "Output"):
            p = re.search(r"ParamType\(\s*(\w+)\s*\)", rest)
            dts = re.search(r"\.DataType\(\s*\{([^}]*)\}", rest)
            entry = (name, p.group(1) if p else "REQUIRED", tuple(re.findall(r"DT_\w+", dts.group(1) if dts else "")))
            out["inputs" if what == "Input" else "outputs"].append(entry)
        else:
            t = re.search(r"AttrType\(\s*(\w+)\s*\)", rest)
            k = re.search(r"\.(String|Int|Bool|Float|ListInt)\(\s*([^)]*?)\s*\)", rest)
            if k is None:
                raise AssertionError(f"attr {name}: no type call in `{stmt}`")
            default = _literal(k.group(2)) if k.group(2) != "" else None
            out["attrs"].append((name, _KINDS[k.group(1)], (t.group(1) if t else "REQUIRED") == "REQUIRED", default))
    return out


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


def test_proto_inputs(proto):
    assert [n for n, _, _ in proto["inputs"]] == list(GE_INPUTS)
    kinds = {n: k for n, k, _ in proto["inputs"]}
    assert {n for n, k in kinds.items() if k == "OPTIONAL_INPUT"} == set(GE_OPTIONAL_INPUTS)
    assert {n for n, k in kinds.items() if k == "INPUT"} == set(GE_INPUTS) - set(GE_OPTIONAL_INPUTS)


def test_proto_outputs(proto):
    assert [(n, k) for n, k, _ in proto["outputs"]] == [(n, "OUTPUT") for n in GE_OUTPUTS]


def test_proto_attrs_names_kinds_requiredness_defaults_and_order(proto):
    assert proto["attrs"] == EXPECTED_ATTRS


def test_proto_dtypes_follow_spec(proto):
    types = {n: set(t) for n, _, t in proto["inputs"] + proto["outputs"]}
    for name in ("x", "weight", "y1", "y2", "y3"):
        assert types[name] == {"DT_FLOAT16", "DT_BF16"}, name
    assert {"DT_FLOAT16", "DT_FLOAT"} <= types["bias"], types["bias"]


def test_opdef_inputs(opdef):
    assert [n for n, _, _ in opdef["inputs"]] == list(GE_INPUTS)
    assert {n for n, p, _ in opdef["inputs"] if p == "OPTIONAL"} == set(GE_OPTIONAL_INPUTS)
    assert {n for n, p, _ in opdef["inputs"] if p == "REQUIRED"} == set(GE_INPUTS) - set(GE_OPTIONAL_INPUTS)


def test_opdef_outputs(opdef):
    assert [(n, p) for n, p, _ in opdef["outputs"]] == [(n, "REQUIRED") for n in GE_OUTPUTS]


def test_opdef_attrs_names_kinds_requiredness_defaults_and_order(opdef):
    # Order matters beyond GE: the generated aclnn API takes attributes in OpDef order, and
    # integration/csrc/aag_bmm_aclnn.cpp calls it in GE_ATTRS order.
    got = [(n, k, r, None if r else d) for n, k, r, d in opdef["attrs"]]
    assert got == EXPECTED_ATTRS


def test_opdef_dtype_columns_follow_spec(opdef):
    cols = {n: t for n, _, t in opdef["inputs"] + opdef["outputs"]}
    width = len(cols["x"])
    assert width > 0 and all(len(t) == width for t in cols.values()), cols
    seen = set()
    for k in range(width):
        x_dt = _DT[cols["x"][k]]
        seen.add(x_dt)
        for name in ("weight", "y1", "y2", "y3"):
            assert _DT[cols[name][k]] == x_dt, (name, k)
        assert _DT[cols["bias"][k]] == rules.bias_dtype_for(x_dt), ("bias", k)
    assert seen == set(rules.NPU_DTYPES)


def test_opdef_hccl_groups_are_the_group_attrs(opdef):
    if opdef["hccl_groups"] is None:
        pytest.fail("OpDef declares no MC2().HcclGroup(...): the kernel would get no communicators")
    assert set(opdef["hccl_groups"]) == {a.name for a in GE_ATTRS if a.kind == "str"}


def test_proto_and_opdef_agree(proto, opdef):
    assert [n for n, _, _ in proto["inputs"]] == [n for n, _, _ in opdef["inputs"]]
    assert [n for n, _, _ in proto["outputs"]] == [n for n, _, _ in opdef["outputs"]]
    assert [a[:3] for a in proto["attrs"]] == [a[:3] for a in opdef["attrs"]]


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
            .DataType({ge::DT_FLOAT16, ge::DT_BF16});
        this->Input("b").ParamType(OPTIONAL).DataType({ge::DT_FLOAT16, ge::DT_FLOAT});
        this->Output("c").ParamType(REQUIRED).DataType({ge::DT_FLOAT16, ge::DT_BF16});
        this->Attr("g").AttrType(REQUIRED).String();
        this->Attr("n").AttrType(OPTIONAL).Int(3);
        this->Attr("t").AttrType(OPTIONAL).Bool(false);
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
    assert d["outputs"] == [("c", "REQUIRED", ("DT_FLOAT16", "DT_BF16"))]
    assert d["attrs"] == [("g", "str", True, None), ("n", "int", False, 3), ("t", "bool", False, False)]
    assert d["hccl_groups"] == ("g",)
    with pytest.raises(AssertionError):
        parse_reg_op(_SAMPLE_PROTO, "Other")
