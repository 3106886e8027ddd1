"""Eager NPU path: the decisions in fake environments here; the real thing under @pytest.mark.npu."""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from moe_mc2 import integration
from moe_mc2.contract.errors import ContractTypeError
from moe_mc2.contract.names import GE_ATTRS, GE_INPUTS, GE_OUTPUTS
from moe_mc2.integration import npu

HAS_TORCH_NPU = importlib.util.find_spec("torch_npu") is not None
needs_npu = pytest.mark.skipif(not HAS_TORCH_NPU, reason="torch_npu is not installed (no Ascend NPU here)")


def _install(root, vendor="moe_mc2"):
    lib = root / vendor / "op_api" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcust_opapi.so").write_bytes(b"")
    return str(root / vendor)


# ---- where the OPP package is -------------------------------------------------------------------

def test_candidates_follow_cann_lookup_order():
    env = {"ASCEND_CUSTOM_OPP_PATH": "/a/vendors/moe_mc2::/b", "ASCEND_OPP_PATH": "/opp"}
    assert npu.opp_candidates(env) == ["/a/vendors/moe_mc2", "/b/vendors/moe_mc2", "/opp/vendors/moe_mc2"]
    assert npu.opp_candidates({}) == []


def test_found_in_custom_path(tmp_path):
    vendor = _install(tmp_path / "custom")
    assert npu.find_opp_package({"ASCEND_CUSTOM_OPP_PATH": vendor}) == vendor


def test_found_in_default_vendors_dir(tmp_path):
    vendor = _install(tmp_path / "opp" / "vendors")
    assert npu.find_opp_package({"ASCEND_OPP_PATH": str(tmp_path / "opp")}) == vendor


def test_custom_path_wins_over_default(tmp_path):
    custom = _install(tmp_path / "custom")
    _install(tmp_path / "opp" / "vendors")
    env = {"ASCEND_CUSTOM_OPP_PATH": custom, "ASCEND_OPP_PATH": str(tmp_path / "opp")}
    assert npu.find_opp_package(env) == custom


def test_other_vendor_or_missing_library_is_not_the_package(tmp_path):
    _install(tmp_path / "opp" / "vendors", vendor="customize")
    (tmp_path / "opp" / "vendors" / "moe_mc2").mkdir()  # a vendor dir without the aclnn library
    assert npu.find_opp_package({"ASCEND_OPP_PATH": str(tmp_path / "opp")}) is None
    assert npu.find_opp_package({}) is None


def test_choose_path():
    assert npu.choose_path("/opp/vendors/moe_mc2") == npu.PATH_ACLNN
    assert npu.choose_path(None) == npu.PATH_PORTABLE


def test_cann_home():
    assert npu.cann_home({"ASCEND_HOME_PATH": "/h"}) == "/h"
    assert npu.cann_home({"ASCEND_TOOLKIT_HOME": "/t"}) == "/t"
    assert npu.cann_home({"ASCEND_OPP_PATH": "/usr/local/Ascend/ascend-toolkit/latest/opp"}) == \
        "/usr/local/Ascend/ascend-toolkit/latest"
    assert npu.cann_home({}) is None


# ---- weight layout for aclnn --------------------------------------------------------------------

def test_transposed_weight_is_passed_as_stored():
    stored = torch.randn(2, 5, 8)
    w, flag = npu.weight_for_aclnn(stored.transpose(1, 2))
    assert flag is True and w.shape == (2, 5, 8) and w.is_contiguous()
    assert w.data_ptr() == stored.data_ptr()  # no copy


def test_plain_and_odd_weights():
    w0 = torch.randn(2, 8, 5)
    w, flag = npu.weight_for_aclnn(w0)
    assert flag is False and w.data_ptr() == w0.data_ptr()
    odd = torch.randn(2, 8, 10)[:, :, ::2]
    w, flag = npu.weight_for_aclnn(odd)
    assert flag is False and w.is_contiguous() and torch.equal(w, odd)


# ---- the kernel's two paths, with the NPU pieces faked ------------------------------------------

ARGS = dict(group_ep="1", group_ep_worldsize=2, group_tp="2", group_tp_worldsize=2)


class FakeExtension:
    def __init__(self):
        self.calls = []

    def run(self, *args):
        self.calls.append(args)


@pytest.fixture
def fresh_npu(monkeypatch):
    monkeypatch.setattr(npu, "_said_portable", False)
    return npu


def test_portable_fallback_runs_runtime_and_says_so_once(fresh_npu, monkeypatch, caplog):
    from moe_mc2.runtime import forward

    calls = []
    monkeypatch.setattr(npu, "find_opp_package", lambda *a, **k: None)
    monkeypatch.setattr(forward, "run", lambda *a, **k: calls.append((a, k)) or ("y1", "y2", "y3"))
    x, w = torch.randn(4, 3, 8), torch.randn(2, 8, 5)
    with caplog.at_level(logging.WARNING, logger=npu.__name__):
        for _ in range(2):
            assert npu._forward_npu(x, w, **ARGS, shard_type=1, act_type=3, need_allgather_out=True) == \
                ("y1", "y2", "y3")
    assert len(calls) == 2
    (a, k) = calls[0]
    assert a[0] is x and a[1] is w and a[2] is None
    assert k == dict(group_ep="1", ep=2, group_tp="2", tp=2, shard_type=1, act_type=3,
                     need_allgather_out=True, need_activation_feature=False)
    said = [r for r in caplog.records if "portable runtime" in r.getMessage()]
    assert len(said) == 1


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("act,y2,y3", [(0, False, True), (1, True, True), (4, False, False)])
def test_aclnn_path_passes_everything_in_order(fresh_npu, monkeypatch, transposed, act, y2, y3):
    ext = FakeExtension()
    monkeypatch.setattr(npu, "find_opp_package", lambda *a, **k: "/opp/vendors/moe_mc2")
    monkeypatch.setattr(npu, "load_extension", lambda package_dir: ext)
    monkeypatch.setattr(npu, "hccl_comm_name", lambda name: f"hccl_{name}")
    x = torch.randn(4, 3, 8, dtype=torch.float16)  # shard 1: E=4, C/tp=3, H=8; El=2, rows=12
    stored = torch.randn(2, 5, 8, dtype=torch.float16)
    w = stored.transpose(1, 2) if transposed else stored.transpose(1, 2).contiguous()
    b = torch.randn(2, 1, 5, dtype=torch.float16)
    y1, y2_out, y3_out = npu._forward_npu(x, w, bias=b, **ARGS, shard_type=1, act_type=act,
                                          need_allgather_out=y2, need_activation_feature=y3)
    assert len(ext.calls) == 1
    c = ext.calls[0]
    assert c[0] is x and c[2] is b
    assert c[1].shape == ((2, 5, 8) if transposed else (2, 8, 5))
    assert c[3:12] == ("hccl_1", "hccl_2", 2, 2, 1, act, transposed, y2, y3 and act != 0)
    assert c[12] is y1 and c[13] is y2_out and c[14] is y3_out
    assert y1.shape == (2, 12, 5) and y1.dtype == torch.float16
    assert y2_out.shape == ((2, 12, 8) if y2 else (0, 0, 0))
    assert y3_out.shape == ((2, 12, 5) if (y3 and act != 0) else (0, 0, 0))


def test_aclnn_path_rejects_float32_before_launch(fresh_npu, monkeypatch):
    ext = FakeExtension()
    monkeypatch.setattr(npu, "find_opp_package", lambda *a, **k: "/opp/vendors/moe_mc2")
    monkeypatch.setattr(npu, "load_extension", lambda package_dir: ext)
    with pytest.raises(ContractTypeError, match="on the NPU"):
        npu._forward_npu(torch.randn(4, 3, 8), torch.randn(2, 8, 5), **ARGS, shard_type=1)
    assert ext.calls == []


# ---- registration without torch_npu -------------------------------------------------------------

@pytest.mark.skipif(HAS_TORCH_NPU, reason="checks the machine without torch_npu")
def test_without_torch_npu_nothing_is_registered():
    assert integration.register_all()["npu"] is False
    assert not torch._C._dispatch_has_kernel_for_dispatch_key(
        "moe_mc2::npu_alltoall_allgather_bmm", "PrivateUse1")
    with pytest.raises(ImportError):
        npu.register()


# ---- the C++ bridge -----------------------------------------------------------------------------

CPP = os.path.join(npu.CSRC_DIR, "aag_bmm_aclnn.cpp")


def test_bridge_declares_the_generated_aclnn_arity():
    src = open(CPP, encoding="utf-8").read()
    m = re.search(r"using GetWorkspaceFn = int \(\*\)\((.*?)\);", src, re.S)
    params = [p for p in m.group(1).split(",") if p.strip()]
    # inputs, attributes (OpDef order), outputs, then workspace size and executor
    assert len(params) == len(GE_INPUTS) + len(GE_ATTRS) + len(GE_OUTPUTS) + 2
    kinds = [p.strip() for p in params[len(GE_INPUTS):len(GE_INPUTS) + len(GE_ATTRS)]]
    c_kind = {"str": "const char *", "int": "int64_t", "bool": "bool"}
    assert kinds == [c_kind[a.kind] for a in GE_ATTRS]


_STUBS = {
    "aclnn/acl_meta.h": """#pragma once
#include <cstdint>
#include <cstddef>
struct aclTensor; struct aclOpExecutor; typedef void *aclrtStream;
enum aclDataType { ACL_FLOAT = 0, ACL_FLOAT16 = 1, ACL_BF16 = 27 };
enum aclFormat { ACL_FORMAT_ND = 2 };
aclTensor *aclCreateTensor(const int64_t *, uint64_t, aclDataType, const int64_t *, int64_t, aclFormat,
                           const int64_t *, uint64_t, void *);
int aclDestroyTensor(const aclTensor *);
""",
    "torch_npu/csrc/core/npu/NPUStream.h": """#pragma once
namespace c10_npu { struct NPUStream { void *stream(bool need_empty = true) const; };
NPUStream getCurrentNPUStream(); }
""",
    "torch_npu/csrc/framework/OpCommand.h": """#pragma once
#include <functional>
#include <string>
namespace at_npu { namespace native { struct OpCommand {
  static void RunOpApi(const std::string &name, std::function<int()> func); }; } }
""",
}


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_bridge_compiles_against_torch_with_stub_npu_headers(tmp_path):
    """Syntax and types against the real torch headers; the NPU headers are minimal stand-ins of
    the declarations the bridge uses (their real counterparts are checked only on an NPU)."""
    from torch.utils.cpp_extension import include_paths
    import sysconfig

    for rel, text in _STUBS.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    cmd = ["g++", "-std=c++17", "-fsyntax-only", "-DTORCH_EXTENSION_NAME=moe_mc2_aclnn", "-DTORCH_API_INCLUDE_EXTENSION_H",
           f"-I{tmp_path}", f"-I{sysconfig.get_paths()['include']}"] + [f"-I{p}" for p in include_paths()] + [CPP]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]


# ---- on an NPU ----------------------------------------------------------------------------------

@pytest.mark.npu
@needs_npu
def test_npu_kernel_is_registered():
    import moe_mc2  # noqa: F401
    assert torch._C._dispatch_has_kernel_for_dispatch_key("moe_mc2::npu_alltoall_allgather_bmm", "PrivateUse1")


def npu_rank_fn(ctx, shard_type, act_type, transposed):
    """One rank of an HCCL world: eager NPU op vs the CPU reference of the same world."""
    import torch_npu  # noqa: F401
    import moe_mc2
    from moe_mc2 import reference

    torch.npu.set_device(ctx.rank)
    ep, tp, E, C, H, N = ctx.ep, ctx.tp, 4, 8, 16, 8
    El = E // ep
    gen = torch.Generator().manual_seed(1234)
    shape = (E, C // tp, H) if shard_type == 1 else (E, C, H // tp)
    xs = [torch.randn(shape, generator=gen).half() for _ in range(ctx.world_size)]
    ws = [torch.randn(El, N, H, generator=gen).half() for _ in range(ctx.world_size)]  # stored layout
    bs = [torch.randn(El, N, generator=gen).half() for _ in range(ctx.world_size)]
    want = reference.forward(xs, [w.transpose(1, 2) for w in ws], bs, ep=ep, tp=tp, shard_type=shard_type,
                             act_type=act_type, need_allgather_out=True, need_activation_feature=True)[ctx.rank]
    w = ws[ctx.rank].npu()
    w = w.transpose(1, 2) if transposed else w.transpose(1, 2).contiguous()
    got = moe_mc2.npu_alltoall_allgather_bmm(
        xs[ctx.rank].npu(), w, bias=bs[ctx.rank].npu(), group_ep=ctx.ep_group, group_ep_worldsize=ep,
        group_tp=ctx.tp_group, group_tp_worldsize=tp, shard_type=shard_type, act_type=act_type,
        need_allgather_out=True, need_activation_feature=True)
    for g, r in zip(got, want):
        torch.testing.assert_close(g.cpu(), r, rtol=1e-2, atol=1e-2)
    return True


@pytest.mark.npu
@needs_npu
@pytest.mark.parametrize("shard_type", [0, 1])
@pytest.mark.parametrize("transposed", [False, True])
def test_npu_eager_matches_reference(shard_type, transposed):
    from moe_mc2.launch import LocalWorld

    if torch.npu.device_count() < 4:
        pytest.skip("needs 4 NPUs for a 2x2 world")
    with LocalWorld(2, 2, backend="hccl") as world:
        assert world.run(npu_rank_fn, shard_type, 1, transposed) == [True] * 4
