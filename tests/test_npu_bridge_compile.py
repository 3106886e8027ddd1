"""The aclnn bridge against the real headers, and its one declarations file against the OpDef.

1. The bridge (csrc/aag_bmm_aclnn.cpp) is compiled the way `moe_mc2.integration.npu.
   load_extension` has torch.utils.cpp_extension.load compile it on an NPU machine: the same
   `extension_spec`, passed through `load()` itself (tests/support/ext_build.py reads back the
   build.ninja torch writes), with torch_npu's C++ and ACL headers from the torch-npu wheel
   (downloaded, never installed) and the pinned torch's; `-fsyntax-only` is the only flag added.
   CANN's aclnn/acl_meta.h comes from $CANN_INCLUDE when it is set (a second compile), else the
   bridge's own declarations (csrc/aclnn_decls.h) stand in for it.
2. csrc/aclnn_decls.h: its entry-point types (the forward op's taken from the OPP package's
   public header, op_host/op_api/aclnn_alltoall_allgather_bmm.h, which csrc links to) against
   op_host's OpDef and contract/names.py's adjoint prototype, less the three attributes the
   public APIs derive from the tensors; its ACL enums against CANN's values; its
   aclCreateTensor / aclDestroyTensor against CANN's acl_meta.h; optionally against CANN's
   published op-API headers ($MOE_MC2_OPS_TRANSFORMER: a clone or git dir of
   hicann/ops-transformer). The wrapper itself: tests/test_aclnn_wrapper.py.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from moe_mc2.contract.names import (ADJOINT_GE_ATTRS, ADJOINT_GE_INPUTS, ADJOINT_GE_OUTPUTS, GE_OP_TYPE)
from moe_mc2.integration import npu
from support import ext_build, torch_npu_wheel
from test_conformance import parse_op_def

ROOT = Path(__file__).resolve().parents[1]
CSRC = Path(npu.CSRC_DIR)


@pytest.fixture(scope="module")
def wheel():
    try:
        return torch_npu_wheel.ensure()
    except torch_npu_wheel.WheelUnavailable as exc:
        pytest.skip(f"torch-npu wheel unavailable: {exc}")


# ---- 1. the bridge, as load() compiles it, against torch_npu's own headers ----------------------

@pytest.mark.parametrize("acl_meta", ["aclnn_decls.h", "CANN_INCLUDE"])
def test_bridge_compiles_against_the_torch_npu_wheel(wheel, acl_meta):
    cann = ext_build.cann_aclnn_include()
    if acl_meta == "CANN_INCLUDE" and cann is None:
        pytest.skip("$CANN_INCLUDE is not set (or holds no opbase/include/nnopbase/aclnn/acl_meta.h)")
    # npu_root is torch_npu's package directory; the wheel's include/ was unpacked as <cache>/include
    spec = npu.extension_spec(str(wheel.include_root.parent), [cann] if acl_meta == "CANN_INCLUDE" else [])
    plan = ext_build.plan(build_dir=ext_build.BUILD / f"bridge-{acl_meta.split('.')[0].lower()}", **spec)
    cmd = plan.compile_command(npu.BRIDGE_SOURCE)
    inc = str(wheel.include_root)
    # torch_npu's headers first (-I), torch's after (-isystem), as load() orders them
    assert cmd.index(f"-I{inc} ") < cmd.index(f"-I{inc}/third_party/hccl/inc") < cmd.index("-isystem")
    for header in ("torch_npu/csrc/framework/OpCommand.h", "torch_npu/csrc/core/npu/NPUStream.h", "acl/acl_base.h"):
        assert (wheel.include_root / header).is_file(), header  # the real ones, from the wheel
    ok, out = ext_build.syntax_check(plan, npu.BRIDGE_SOURCE, CSRC.glob("*"))
    assert ok, out[-6000:]


# ---- 2. the declarations ------------------------------------------------------------------------

C_TYPE = {"str": "const char *", "int": "int64_t", "bool": "bool"}
# The public aclnnAlltoAllAllGatherBatchMatMul (CANN's built-in and the package's wrapper) and
# CANN's aclnnBatchMatMulReduceScatterAlltoAll take no transpose_weight and no output flags
# (ops-transformer mc2/*/op_host/op_api/*.h): a transposed weight is recognised from its strides,
# an output not produced is a null pointer.
NOT_IN_PUBLIC = ("transpose_weight", "output_y2_flag", "output_y3_flag")


def _signature(inputs, attrs, outputs) -> str:
    params = (["const aclTensor *"] * len(inputs) + [C_TYPE[kind] for _, kind in attrs]
              + ["aclTensor *"] * len(outputs) + ["uint64_t *", "aclOpExecutor **"])
    return f"aclnnStatus (*)({', '.join(params)})"


@pytest.fixture(scope="module")
def opdef():
    text = (ROOT / "op_host" / "aag_bmm_def.cpp").read_text()
    return parse_op_def(text, GE_OP_TYPE)


def expected_signatures(opdef) -> dict:
    fwd_attrs = [(name, kind) for name, kind, _, _ in opdef["attrs"]]
    adj_attrs = [(a.name, a.kind) for a in ADJOINT_GE_ATTRS]
    return {
        "ForwardGetWorkspaceSizeFn": _signature(
            opdef["inputs"], [a for a in fwd_attrs if a[0] not in NOT_IN_PUBLIC], opdef["outputs"]),
        "AdjointGetWorkspaceSizeFn": _signature(
            ADJOINT_GE_INPUTS, [a for a in adj_attrs if a[0] not in NOT_IN_PUBLIC], ADJOINT_GE_OUTPUTS),
        "RunFn": "aclnnStatus (*)(void *, uint64_t, aclOpExecutor *, aclrtStream)",
    }


def compile_snippet(tmp_path: Path, body: str, includes=(), name="snippet.cpp"):
    src = tmp_path / name
    src.write_text(body)
    cmd = ["c++", "-std=c++20", "-fsyntax-only", f"-I{CSRC}", *[f"-I{i}" for i in includes], str(src)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _asserts(signatures: dict) -> str:
    lines = ['#include "aclnn_decls.h"', "using namespace moe_mc2::aclnn;"]
    for alias, sig in signatures.items():
        lines.append(f'static_assert(std::is_same_v<{alias}, {sig}>, "{alias}");')
    return "\n".join(lines) + "\n"


def test_declarations_agree_with_the_opdef(opdef, tmp_path):
    sigs = expected_signatures(opdef)
    # the attributes the public APIs derive exist, and are what npu.py documents
    assert set(NOT_IN_PUBLIC) <= {a[0] for a in opdef["attrs"]}
    assert "transpose_weight" in {a.name for a in ADJOINT_GE_ATTRS}
    assert set(npu.DERIVED_ATTRS) == set(NOT_IN_PUBLIC)
    r = compile_snippet(tmp_path, _asserts(sigs))
    assert r.returncode == 0, r.stderr[-4000:]


def test_the_agreement_check_can_fail(opdef, tmp_path):
    """Negative controls: the OpDef's attributes in another order, one attribute dropped, the
    derived attributes kept."""
    attrs = list(opdef["attrs"])
    attrs[1], attrs[2] = attrs[2], attrs[1]  # group_tp (str) <-> ep_world_size (int)
    swapped = dict(opdef, attrs=attrs)
    sig = expected_signatures(swapped)["ForwardGetWorkspaceSizeFn"]
    r = compile_snippet(tmp_path, _asserts({"ForwardGetWorkspaceSizeFn": sig}))
    assert r.returncode != 0 and "ForwardGetWorkspaceSizeFn" in r.stderr
    dropped = dict(opdef, attrs=[a for a in opdef["attrs"] if a[0] != "act_type"])
    sig = expected_signatures(dropped)["ForwardGetWorkspaceSizeFn"]
    r = compile_snippet(tmp_path, _asserts({"ForwardGetWorkspaceSizeFn": sig}))
    assert r.returncode != 0
    # the OpDef's whole list (what opbuild generates, the inner API) is not the public one
    inner = _signature(opdef["inputs"], [(n, k) for n, k, _, _ in opdef["attrs"]], opdef["outputs"])
    r = compile_snippet(tmp_path, _asserts({"ForwardGetWorkspaceSizeFn": inner}))
    assert r.returncode != 0


# CANN's acl/acl_base.h values
ACL_VALUES = """#include "aclnn_decls.h"
static_assert(ACL_FLOAT == 0 && ACL_FLOAT16 == 1 && ACL_BF16 == 27 && ACL_FORMAT_ND == 2);
static_assert(std::is_same_v<aclrtStream, void *> && sizeof(aclDataType) == sizeof(int));
static_assert(std::is_same_v<aclnnStatus, int32_t>);
#if defined(WANT_CANN) != defined(MOE_MC2_ACL_BASE_FROM_CANN)
#error "acl/acl_base.h taken from the wrong place"
#endif
"""


def test_own_acl_types_carry_cann_values(tmp_path):
    r = compile_snippet(tmp_path, ACL_VALUES)  # no acl/acl_base.h on the path: the declarations
    assert r.returncode == 0, r.stderr[-3000:]


def test_wheel_acl_types_have_the_values_the_tests_state(wheel, tmp_path):
    r = compile_snippet(tmp_path, "#define WANT_CANN 1\n" + ACL_VALUES, [wheel.include_root])
    assert r.returncode == 0, r.stderr[-3000:]


def test_acl_meta_from_cann_include(wheel, tmp_path):
    cann = ext_build.cann_aclnn_include()
    if cann is None:
        pytest.skip("$CANN_INCLUDE is not set")
    body = ('#include "aclnn_decls.h"\n#ifndef MOE_MC2_ACL_META_FROM_CANN\n#error "not CANN\'s acl_meta.h"\n#endif\n')
    r = compile_snippet(tmp_path, body, [wheel.include_root, cann])  # includes the static_asserts
    assert r.returncode == 0, r.stderr[-3000:]


def test_a_different_acl_meta_is_caught(tmp_path):
    """aclnn_decls.h static_asserts its aclCreateTensor type against whatever acl_meta.h it finds."""
    fake = tmp_path / "inc" / "aclnn" / "acl_meta.h"
    fake.parent.mkdir(parents=True)
    fake.write_text("""#pragma once
#include <cstdint>
extern "C" {
typedef struct aclTensor aclTensor; typedef struct aclOpExecutor aclOpExecutor; typedef int32_t aclnnStatus;
aclTensor *aclCreateTensor(const int64_t *, uint64_t, aclDataType, const int64_t *, int64_t, aclFormat,
                           const int64_t *, uint64_t, void *, int64_t extra);
aclnnStatus aclDestroyTensor(const aclTensor *);
}
""")
    r = compile_snippet(tmp_path, '#include "aclnn_decls.h"\n', [tmp_path / "inc"])
    assert r.returncode != 0 and "aclCreateTensor differs from CANN's aclnn/acl_meta.h" in r.stderr


# ---- optional: CANN's published op-API headers ---------------------------------------------------

PUBLISHED = {
    "mc2/allto_all_all_gather_batch_mat_mul/op_host/op_api/aclnn_all_to_all_all_gather_batch_matmul.h":
        ("aclnnAlltoAllAllGatherBatchMatMul", "ForwardGetWorkspaceSizeFn"),
    "mc2/batch_mat_mul_reduce_scatter_allto_all/op_host/op_api/aclnn_batch_matmul_reduce_scatter_all_to_all.h":
        ("aclnnBatchMatMulReduceScatterAlltoAll", "AdjointGetWorkspaceSizeFn"),
}


def _published_text(source: str, path: str) -> str:
    if os.path.isfile(os.path.join(source, path)):
        return Path(source, path).read_text()
    return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


def test_declarations_match_cann_published_headers(tmp_path):
    """With MOE_MC2_OPS_TRANSFORMER pointing at hicann/ops-transformer (a checkout or its git dir),
    the built-in entry points' declarations are taken from there (at test time, nothing is kept)
    and compared with aclnn_decls.h by the compiler."""
    source = os.environ.get("MOE_MC2_OPS_TRANSFORMER")
    if not source:
        pytest.skip("MOE_MC2_OPS_TRANSFORMER is not set")
    decls, checks = [], []
    for path, (entry, alias) in PUBLISHED.items():
        text = _published_text(source, path)
        for name, want in ((entry + "GetWorkspaceSize", alias), (entry, "RunFn")):
            m = re.search(rf"ACLNN_API\s+aclnnStatus\s+{name}\s*\(.*?\);", text, re.S)
            assert m, f"{name} not declared in {path}"
            decls.append(m.group(0))
            checks.append(f'static_assert(std::is_same_v<decltype(&::{name}), moe_mc2::aclnn::{want}>, "{name}");')
    body = '#include "aclnn_decls.h"\n#define ACLNN_API\nextern "C" {\n' + "\n".join(decls) + "\n}\n" + \
        "\n".join(checks) + "\n"
    r = compile_snippet(tmp_path, body)
    assert r.returncode == 0, r.stderr[-4000:]
