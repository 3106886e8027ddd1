"""docs/contract.md is the contract: every rule id the code can raise is listed there, and the
files of the contract point nowhere outside the repository."""
import ast
import json
import os
import re

import pytest

from moe_mc2.contract import names
from moe_mc2.contract.rule_ids import RULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = open(os.path.join(ROOT, "docs", "contract.md"), encoding="utf-8").read()
RULE_SHAPE = re.compile(r"^[A-Za-z_]+\.[a-z_]+$")
RAISERS = {"value", "type", "ContractValueError", "ContractTypeError", "RanksDisagree", "chk_value"}


def _python_sources():
    for base, _, files in os.walk(os.path.join(ROOT, "python", "moe_mc2")):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(base, f)


def _raised_ids_python():
    """String constants in the rule-id position of the calls that raise a broken rule."""
    found = {}
    for path in _python_sources():
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if fn not in RAISERS:
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and RULE_SHAPE.match(arg.value):
                    found.setdefault(arg.value, os.path.relpath(path, ROOT))
    return found


def test_every_listed_rule_id_is_documented():
    missing = [r for r in RULES if f"`{r}`" not in DOC]
    assert not missing, f"rule ids missing from docs/contract.md: {missing}"


def test_every_rule_id_the_python_code_raises_is_listed():
    found = _raised_ids_python()
    assert len(found) >= 30  # the scan does find the raises
    unlisted = {r: where for r, where in found.items() if r not in RULES}
    assert not unlisted, f"rule ids raised but not in contract/rule_ids.py (and docs/contract.md): {unlisted}"


def test_every_rule_id_of_the_cpp_core_and_the_vectors_is_listed():
    cpp = open(os.path.join(ROOT, "op_host", "core", "aag_bmm_rules.cpp"), encoding="utf-8").read()
    ids = set(re.findall(r'Fail\("([^"]+)"', cpp))
    assert len(ids) >= 15
    for name in ("forward_valid.json", "forward_invalid.json"):
        for case in json.load(open(os.path.join(ROOT, "tests", "vectors", name)))["cases"]:
            ids |= {case[k] for k in ("rule", "npu_rule") if k in case}
    assert ids <= set(RULES), ids - set(RULES)


def test_an_unlisted_rule_id_cannot_be_raised():
    from moe_mc2.contract.errors import ContractValueError

    with pytest.raises(AssertionError, match="not listed"):
        ContractValueError("op", "x", 1, "no.such_rule", "text")


def test_ge_and_aclnn_names_are_documented():
    wanted = [names.GE_OP_TYPE, names.ADJOINT_GE_OP_TYPE, names.ACLNN_RUN, names.ACLNN_GET_WORKSPACE,
              names.ADJOINT_ACLNN_RUN, names.ADJOINT_ACLNN_GET_WORKSPACE]
    wanted += [a.name for a in names.GE_ATTRS + names.ADJOINT_GE_ATTRS]
    wanted += list(names.GE_INPUTS + names.GE_OUTPUTS + names.ADJOINT_GE_OUTPUTS)
    assert [w for w in wanted if f"`{w}`" not in DOC and f"**`{w}`**" not in DOC] == []


def test_settings_are_documented():
    from moe_mc2.runtime import settings

    for var in (settings.TILES, settings.EXPERT_TILES, settings.AGREEMENT):
        assert f"`{var}`" in DOC


OWN = ["python/moe_mc2/__init__.py", "python/moe_mc2/ops.py", "python/moe_mc2/adjoint_ops.py",
       "python/moe_mc2/autograd.py", "python/moe_mc2/nn.py", "python/moe_mc2/launch.py", "python/moe_mc2/demo.py",
       "python/moe_mc2/bench.py", "python/moe_mc2/reference.py", "python/moe_mc2/reference_adjoint.py",
       "python/moe_mc2/testing.py", "python/moe_mc2/contract", "python/moe_mc2/runtime", "python/moe_mc2/planning",
       "docs/contract.md", "docs/runtime.md", "docs/training_and_bench.md", "op_host/core/aag_bmm_rules.h",
       "op_host/core/aag_bmm_rules.cpp", "examples/train_expert_mlp.py"]
OUTSIDE = re.compile(r"\bSPEC\b|\.\./shared|/work/")


def test_the_contract_files_point_nowhere_outside_the_repository():
    hits = []
    for rel in OWN:
        path = os.path.join(ROOT, rel)
        paths = [path] if os.path.isfile(path) else [os.path.join(b, f) for b, _, fs in os.walk(path) for f in fs
                                                      if f.endswith((".py", ".md", ".h", ".cpp"))]
        for p in paths:
            for n, line in enumerate(open(p, encoding="utf-8"), 1):
                if OUTSIDE.search(line):
                    hits.append(f"{os.path.relpath(p, ROOT)}:{n}: {line.strip()}")
    assert not hits, hits
