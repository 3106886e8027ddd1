"""Read the CANN operator sources of this project (op_proto REG_OP, op_host OpDef) as data.

The C++ files are read with regular expressions over the standard CANN syntax
(`.INPUT(x, TensorType({...}))`, `.ATTR(name, Int, 0)`,
`this->Attr("name").AttrType(OPTIONAL).Int(0)`, `this->Input("x").ParamType(OPTIONAL)...`).
tests/test_conformance.py checks these parsers on known text, so a parser bug cannot pass
silently; the graph-mode tests answer torchair's op-definition queries from them.
"""
from __future__ import annotations

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_KINDS = {"String": "str", "Int": "int", "Bool": "bool", "Float": "float", "ListInt": "list_int"}


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def literal(text: str):
    text = text.strip().strip('"')
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text


def files_declaring(pattern: str, op_type: str) -> list:
    """Files under ROOT matching `pattern` (recursive glob) that mention `op_type`."""
    return [p for p in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True))
            if op_type in open(p, encoding="utf-8", errors="replace").read()]


def parse_reg_op(text: str, op_type: str) -> dict:
    """{'inputs': [(name, kind, dtypes)], 'outputs': [...], 'attrs': [(name, kind, required, default)]}."""
    text = strip_comments(text)
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
                             None if default is None else literal(default)))
    return out


def parse_op_def(text: str, op_type: str) -> dict:
    """Same shape as parse_reg_op, from `class <op> : public OpDef { ... }`, plus the AICore config.

    Extra keys: 'hccl_groups' (tuple or None), 'contiguous' ({input: 'AutoContiguous' |
    'IgnoreContiguous' | None}), 'config' ({flag call: value} of the OpAICoreConfig chain, e.g.
    'DynamicShapeSupportFlag': True, 'jitCompile.flag': 'static_false'), 'socs' (AddConfig targets).
    """
    text = strip_comments(text)
    m = re.search(rf"class\s+{op_type}\s*:\s*public\s+OpDef\s*\{{(.*?)\n\}};", text, re.S)
    if m is None:
        raise AssertionError(f"no `class {op_type} : public OpDef` in the OpDef file")
    out = {"inputs": [], "outputs": [], "attrs": [], "hccl_groups": None, "contiguous": {}, "config": {},
           "socs": []}
    for stmt in m.group(1).split(";"):
        stmt = " ".join(stmt.split())
        s = re.search(r"this->(Input|Output|Attr)\(\s*\"(\w+)\"\s*\)(.*)", stmt)
        if s is None:
            g = re.search(r"HcclGroup\(\s*\{?([^})]*)\}?\s*\)", stmt)
            if g is not None:
                out["hccl_groups"] = tuple(re.findall(r"\"(\w+)\"", g.group(1)))
            for flag, value in re.findall(r"\.(\w+Flag)\(\s*(true|false)\s*\)", stmt):
                out["config"][flag] = value == "true"
            for key, value in re.findall(r"ExtendCfgInfo\(\s*\"([^\"]+)\"\s*,\s*\"([^\"]*)\"\s*\)", stmt):
                out["config"][key] = value
            out["socs"] += re.findall(r"AddConfig\(\s*\"(\w+)\"", stmt)
            continue
        what, name, rest = s.groups()
        if what in ("Input", "Output"):
            p = re.search(r"ParamType\(\s*(\w+)\s*\)", rest)
            dts = re.search(r"\.DataType\(\s*\{([^}]*)\}", rest)
            entry = (name, p.group(1) if p else "REQUIRED", tuple(re.findall(r"DT_\w+", dts.group(1) if dts else "")))
            out["inputs" if what == "Input" else "outputs"].append(entry)
            if what == "Input":
                c = re.search(r"\.(AutoContiguous|IgnoreContiguous)\(\s*\)", rest)
                out["contiguous"][name] = c.group(1) if c else None
        else:
            t = re.search(r"AttrType\(\s*(\w+)\s*\)", rest)
            k = re.search(r"\.(String|Int|Bool|Float|ListInt)\(\s*([^)]*?)\s*\)", rest)
            if k is None:
                raise AssertionError(f"attr {name}: no type call in `{stmt}`")
            default = literal(k.group(2)) if k.group(2) != "" else None
            out["attrs"].append((name, _KINDS[k.group(1)], (t.group(1) if t else "REQUIRED") == "REQUIRED", default))
    return out


def project_reg_op(op_type: str) -> dict:
    """The REG_OP of `op_type` in this project's op_proto headers (AssertionError when absent)."""
    files = files_declaring("op_proto/**/*.h", op_type)
    if not files:
        raise AssertionError(f"no op_proto header declares {op_type} under {ROOT}/op_proto")
    return parse_reg_op("\n".join(open(p, encoding="utf-8").read() for p in files), op_type)
