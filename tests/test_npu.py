"""Eager NPU path: which kernel serves each op, decided in fake environments; the kernels' Python
half with the bridge faked; the real thing under @pytest.mark.npu.

The C++ bridge itself: tests/test_npu_aclnn_marshalling.py (every argument that reaches aclnn,
through the real core and a fake op-API library) and tests/test_npu_bridge_compile.py (the
bridge against torch_npu's own headers, the declarations against the OpDef).
"""
from __future__ import annotations

import importlib.util
import logging
import os

import pytest
import torch

from moe_mc2 import integration
from moe_mc2.contract.errors import ContractTypeError
from moe_mc2.integration import npu

HAS_TORCH_NPU = importlib.util.find_spec("torch_npu") is not None
needs_npu = pytest.mark.skipif(not HAS_TORCH_NPU, reason="torch_npu is not installed (no Ascend NPU here)")

FWD = "aclnnAlltoAllAllGatherBatchMatMul"
ADJ = "aclnnBatchMatMulReduceScatterAlltoAll"
FWD_SYMS = (FWD + "GetWorkspaceSize", FWD)
ADJ_SYMS = (ADJ + "GetWorkspaceSize", ADJ)
# the package's op-API library: the public entry points (its wrapper) and the wrapper's version
PKG_SYMS = FWD_SYMS + ("moe_mc2_aclnn_api_version",)


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


def test_cann_home():
    assert npu.cann_home({"ASCEND_HOME_PATH": "/h"}) == "/h"
    assert npu.cann_home({"ASCEND_TOOLKIT_HOME": "/t"}) == "/t"
    assert npu.cann_home({"ASCEND_OPP_PATH": "/usr/local/Ascend/ascend-toolkit/latest/opp"}) == \
        "/usr/local/Ascend/ascend-toolkit/latest"
    assert npu.cann_home({}) is None


# ---- where CANN's built-in entry points may be --------------------------------------------------

def test_builtin_candidates_in_torch_npu_order():
    files = {"/c/lib64/libopapi.so"}
    feature = ["/c/lib64/libopapi_transformer.so", "/c/lib64/libopapi_math.so"]
    got = npu.builtin_candidates({"ASCEND_HOME_PATH": "/c"}, exists=files.__contains__,
                                 glob=lambda pattern: feature if pattern == "/c/lib64/libopapi_*.so" else [])
    assert got == ["/c/lib64/libopapi.so", "/c/lib64/libopapi_math.so", "/c/lib64/libopapi_transformer.so",
                   "libopapi.so"]
    # no CANN home: only the dynamic linker's own search
    assert npu.builtin_candidates({}, exists=lambda p: True, glob=lambda p: []) == ["libopapi.so"]
    # a home without libopapi.so (a split CANN with per-package op libraries only)
    assert npu.builtin_candidates({"ASCEND_HOME_PATH": "/c"}, exists=lambda p: False,
                                  glob=lambda p: feature[:1]) == [feature[0], "libopapi.so"]


class Machine:
    """A fake machine: which files exist and which symbols each library exports."""

    def __init__(self, libs: dict, opp_package: bool = False):
        self.libs = dict(libs)
        self.opp = "/opp/vendors/moe_mc2/op_api/lib/libcust_opapi.so"
        if opp_package is not False:
            self.libs[self.opp] = opp_package
        self.probed = []

    def exists(self, path):
        return path in self.libs

    def glob(self, pattern):
        prefix = pattern.split("*")[0]
        return [p for p in self.libs if p.startswith(prefix) and p.endswith(".so")]

    def probe(self, library, symbols):
        self.probed.append(library)
        if library not in self.libs:
            return f"{library}: cannot be loaded (not found)"
        missing = [s for s in symbols if s not in self.libs[library]]
        return f"{library}: does not export {', '.join(missing)}" if missing else None

    def resolve(self, extra_env=None, torch_npu_present=True):
        env = {"ASCEND_HOME_PATH": "/c", "ASCEND_OPP_PATH": "/opp", **(extra_env or {})}
        return npu.resolve_routes(env, torch_npu_present=torch_npu_present, exists=self.exists,
                                  glob=self.glob, probe=self.probe)


def kinds(routes):
    return {op: (r.kind, r.library) for op, r in routes.items()}


def test_package_first_then_cann_builtin_then_portable():
    cann = {"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}
    m = Machine(cann, opp_package=PKG_SYMS)
    assert kinds(m.resolve()) == {"forward": ("package", m.opp), "adjoint": ("builtin", "/c/lib64/libopapi.so")}
    m = Machine(cann)
    assert kinds(m.resolve()) == {"forward": ("builtin", "/c/lib64/libopapi.so"),
                                  "adjoint": ("builtin", "/c/lib64/libopapi.so")}


def test_the_adjoint_never_comes_from_the_package():
    m = Machine({}, opp_package=PKG_SYMS + ADJ_SYMS)
    r = m.resolve()
    assert r["forward"].kind == "package"
    assert r["adjoint"].kind == "portable" and m.opp not in r["adjoint"].missing


def test_entry_points_in_a_per_package_op_library():
    m = Machine({"/c/lib64/libopapi.so": (), "/c/lib64/libopapi_transformer.so": FWD_SYMS + ADJ_SYMS})
    r = m.resolve()
    assert kinds(r) == {"forward": ("builtin", "/c/lib64/libopapi_transformer.so"),
                        "adjoint": ("builtin", "/c/lib64/libopapi_transformer.so")}


def test_an_older_cann_with_only_the_forward():
    m = Machine({"/c/lib64/libopapi.so": FWD_SYMS})
    r = m.resolve()
    assert r["forward"].kind == "builtin"
    assert r["adjoint"].kind == "portable"
    assert r["adjoint"].missing.startswith(f"no library provides {ADJ}[GetWorkspaceSize]: ")
    assert f"/c/lib64/libopapi.so: does not export {ADJ}GetWorkspaceSize, {ADJ}" in r["adjoint"].missing


def test_a_half_exported_entry_point_is_not_enough():
    m = Machine({"/c/lib64/libopapi.so": (FWD + "GetWorkspaceSize",) + ADJ_SYMS})
    r = m.resolve()
    assert r["forward"].kind == "portable" and f"does not export {FWD}" in r["forward"].missing


def test_package_without_the_symbol_is_skipped_and_said():
    m = Machine({"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}, opp_package=())
    r = m.resolve()
    assert kinds(r)["forward"] == ("builtin", "/c/lib64/libopapi.so")
    m = Machine({}, opp_package=())
    r = m.resolve()
    assert r["forward"].kind == "portable"
    assert f"{m.opp}: does not export {FWD}GetWorkspaceSize" in r["forward"].missing
    assert "libopapi.so: cannot be loaded" in r["forward"].missing


def test_a_package_built_before_the_public_wrapper_is_not_called():
    """Its aclnnAlltoAllAllGatherBatchMatMul takes the OpDef's argument list: calling it with
    CANN's public one would pass the wrong arguments. It is recognised by the missing version."""
    cann = {"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}
    m = Machine(cann, opp_package=FWD_SYMS)
    r = m.resolve()
    assert kinds(r)["forward"] == ("builtin", "/c/lib64/libopapi.so")
    assert r["forward"].skipped == (
        f"{m.opp}: exports {FWD} but not moe_mc2_aclnn_api_version: a moe_mc2 package built before its public "
        f"aclnn wrapper (its {FWD} takes another argument list); rebuild and reinstall it (./build.sh package)")
    r = Machine({}, opp_package=FWD_SYMS).resolve()
    assert r["forward"].kind == "portable" and "built before its public aclnn wrapper" in r["forward"].missing
    assert Machine(cann, opp_package=PKG_SYMS).resolve()["forward"].skipped == ""


def test_nothing_installed_names_what_is_missing():
    r = Machine({}).resolve()
    assert {op: x.kind for op, x in r.items()} == {"forward": "portable", "adjoint": "portable"}
    assert "the moe_mc2 OPP package is not installed (looked in /opp/vendors/moe_mc2)" in r["forward"].missing
    assert r["forward"].missing.startswith(f"no library provides {FWD}[GetWorkspaceSize]")
    assert r["adjoint"].missing.startswith(f"no library provides {ADJ}[GetWorkspaceSize]")


def test_without_torch_npu_everything_is_portable_and_nothing_probed():
    m = Machine({"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}, opp_package=PKG_SYMS)
    r = m.resolve(torch_npu_present=False)
    assert {op: (x.kind, x.missing) for op, x in r.items()} == {
        "forward": ("portable", "torch_npu is not importable"),
        "adjoint": ("portable", "torch_npu is not importable")}
    assert m.probed == []


def test_route_override():
    cann = {"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}
    m = Machine(cann, opp_package=PKG_SYMS)
    r = m.resolve({npu.ROUTE_ENV: "builtin"})
    assert kinds(r) == {"forward": ("builtin", "/c/lib64/libopapi.so"), "adjoint": ("builtin", "/c/lib64/libopapi.so")}
    m = Machine(cann, opp_package=PKG_SYMS)
    r = m.resolve({npu.ROUTE_ENV: "Portable"})
    assert {x.kind for x in r.values()} == {"portable"} and m.probed == []
    assert r["forward"].missing == f"{npu.ROUTE_ENV}=portable"
    assert kinds(Machine(cann, opp_package=PKG_SYMS).resolve({npu.ROUTE_ENV: ""}))["forward"][0] == "package"
    with pytest.raises(ValueError, match=npu.ROUTE_ENV):
        Machine(cann).resolve({npu.ROUTE_ENV: "package"})


def test_route_descriptions_and_entries():
    m = Machine({"/c/lib64/libopapi.so": FWD_SYMS + ADJ_SYMS}, opp_package=PKG_SYMS)
    r = m.resolve()
    assert r["forward"].entry == FWD and r["adjoint"].entry == ADJ
    assert r["forward"].describe() == \
        f"npu_alltoall_allgather_bmm: fused kernel of the moe_mc2 OPP package ({FWD} from {m.opp})"
    assert r["adjoint"].describe() == \
        f"npu_bmm_reducescatter_alltoall: CANN's built-in fused kernel ({ADJ} from /c/lib64/libopapi.so)"
    p = Machine({}).resolve(torch_npu_present=False)["adjoint"]
    assert p.entry is None
    assert p.describe() == "npu_bmm_reducescatter_alltoall: portable pipeline over HCCL (torch_npu is not importable)"


def test_probe_symbols_on_real_libraries():
    import ctypes.util

    libc = ctypes.util.find_library("c")
    assert npu.probe_symbols(libc, ("malloc", "free")) is None
    assert npu.probe_symbols(libc, ("malloc", "aclnnNoSuchOp")) == f"{libc}: does not export aclnnNoSuchOp"
    assert npu.probe_symbols("/nonexistent/libopapi.so", ("x",)).startswith(
        "/nonexistent/libopapi.so: cannot be loaded (")


# ---- decided once, logged once ------------------------------------------------------------------

@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(npu, "_ROUTES", None)
    monkeypatch.setattr(npu, "_bound", {})
    monkeypatch.setattr(npu, "_said", set())
    return npu


def _fixed_routes(monkeypatch, forward, adjoint):
    calls = []

    def resolve(environ, torch_npu_present):
        calls.append(1)
        return {"forward": forward, "adjoint": adjoint}
    monkeypatch.setattr(npu, "resolve_routes", resolve)
    return calls


def test_routes_are_decided_once_and_logged_once(fresh, monkeypatch, caplog):
    calls = _fixed_routes(monkeypatch, npu.Route("forward", "builtin", "/c/lib64/libopapi.so"),
                          npu.Route("adjoint", "portable", missing="no library provides X"))
    with caplog.at_level(logging.INFO, logger=npu.__name__):
        first = npu.routes()
        assert npu.routes() is first
        npu.describe_routes()
    assert len(calls) == 1
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert infos == ["moe_mc2 NPU kernels: npu_alltoall_allgather_bmm: CANN's built-in fused kernel "
                     f"({FWD} from /c/lib64/libopapi.so); npu_bmm_reducescatter_alltoall: portable pipeline "
                     "over HCCL (no library provides X)"]
    assert warnings == ["moe_mc2: npu_bmm_reducescatter_alltoall runs the portable pipeline over HCCL, not a "
                        "fused CANN kernel: no library provides X"]


def test_no_warning_when_both_ops_are_fused(fresh, monkeypatch, caplog):
    _fixed_routes(monkeypatch, npu.Route("forward", "package", "/p"), npu.Route("adjoint", "builtin", "/c"))
    with caplog.at_level(logging.INFO, logger=npu.__name__):
        npu.routes()
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_an_installed_package_that_is_not_used_is_said_once(fresh, monkeypatch, caplog):
    _fixed_routes(monkeypatch, npu.Route("forward", "builtin", "/c", skipped="/p: too old"),
                  npu.Route("adjoint", "builtin", "/c"))
    with caplog.at_level(logging.INFO, logger=npu.__name__):
        npu.routes()
        npu.routes()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["moe_mc2: npu_alltoall_allgather_bmm: the installed moe_mc2 OPP package is not used: "
                        "/p: too old"]


# ---- weight layout for aclnn --------------------------------------------------------------------

def test_transposed_weight_is_passed_as_the_view_without_copy():
    stored = torch.randn(2, 5, 8)
    w, flag = npu.weight_for_aclnn(stored.transpose(1, 2))
    assert flag is True and w.shape == (2, 8, 5) and w.stride() == (40, 1, 8)
    assert w.data_ptr() == stored.data_ptr() and torch.equal(w, stored.transpose(1, 2))


def test_size_one_dims_get_the_strides_cann_tests_for():
    stored = torch.randn(1, 5, 8)
    odd = stored.transpose(1, 2).as_strided((1, 8, 5), (123, 1, 8))
    w, flag = npu.weight_for_aclnn(odd)
    assert flag is True and w.stride() == (40, 1, 8) and w.data_ptr() == stored.data_ptr()


def test_plain_and_odd_weights():
    w0 = torch.randn(2, 8, 5)
    w, flag = npu.weight_for_aclnn(w0)
    assert flag is False and w.data_ptr() == w0.data_ptr()
    odd = torch.randn(2, 8, 10)[:, :, ::2]
    w, flag = npu.weight_for_aclnn(odd)
    assert flag is False and w.is_contiguous() and torch.equal(w, odd)


def test_builtin_limits():
    assert npu.builtin_rejects(512, 32) is None
    assert npu.builtin_rejects(1024, 8) == "E = 1024 > 512"
    assert npu.builtin_rejects(128, 64) == "E/ep = 64 > 32"


# ---- the kernels' Python half, with the bridge faked --------------------------------------------

ARGS = dict(group_ep="1", group_ep_worldsize=2, group_tp="2", group_tp_worldsize=2)


class FakeExtension:
    def __init__(self):
        self.calls = []
        self.bound = []

    def bind(self, *args):
        self.bound.append(args)

    def forward(self, *args):
        self.calls.append(("forward",) + args)

    def adjoint(self, *args):
        self.calls.append(("adjoint",) + args)


@pytest.fixture
def fake_ext(fresh, monkeypatch):
    """The bridge's calls recorded, in one process: no peers to agree with (the cross-rank
    agreement of the fused paths is tested in tests/test_npu_agreement.py)."""
    from moe_mc2.runtime import agreement, groups

    ext = FakeExtension()
    monkeypatch.setattr(npu, "load_extension", lambda: ext)
    monkeypatch.setattr(agreement, "_override", False)
    monkeypatch.setattr(groups, "resolve", lambda op, arg, name, size: None)  # no process groups here
    return ext


def _route(monkeypatch, forward_kind, adjoint_kind="builtin"):
    monkeypatch.setattr(npu, "_ROUTES", {
        "forward": npu.Route("forward", forward_kind, None if forward_kind == "portable" else f"/{forward_kind}.so",
                             missing="m" if forward_kind == "portable" else ""),
        "adjoint": npu.Route("adjoint", adjoint_kind, None if adjoint_kind == "portable" else "/builtin.so",
                             missing="m" if adjoint_kind == "portable" else "")})


def test_portable_route_runs_the_runtime(fake_ext, monkeypatch):
    from moe_mc2.runtime import adjoint, forward

    _route(monkeypatch, "portable", "portable")
    calls = []
    monkeypatch.setattr(forward, "run", lambda *a, **k: calls.append((a, k)) or ("y1", "y2", "y3"))
    monkeypatch.setattr(adjoint, "run", lambda *a, **k: calls.append((a, k)) or "out")
    x, w = torch.randn(4, 3, 8), torch.randn(2, 8, 5)
    assert npu._forward_npu(x, w, **ARGS, shard_type=1, act_type=3, need_allgather_out=True) == ("y1", "y2", "y3")
    (a, k) = calls[0]
    assert a[0] is x and a[1] is w and a[2] is None
    assert k == dict(group_ep="1", ep=2, group_tp="2", tp=2, shard_type=1, act_type=3,
                     need_allgather_out=True, need_activation_feature=False)
    xa, wa = torch.randn(2, 8, 5), torch.randn(2, 5, 8)
    assert npu._adjoint_npu(xa, wa, **ARGS, shard_type=1) == "out"
    (a, k) = calls[1]
    assert a[0] is xa and a[1] is wa and a[2] is None
    assert k == dict(group_ep="1", ep=2, group_tp="2", tp=2, shard_type=1)
    assert fake_ext.calls == [] and fake_ext.bound == []


def test_entry_points_are_bound_once_per_op(fake_ext, monkeypatch):
    _route(monkeypatch, "package")
    x, w = torch.randn(4, 3, 8).half(), torch.randn(2, 8, 5).half()
    for _ in range(3):
        npu._forward_npu(x, w, **ARGS, shard_type=1)
        npu._adjoint_npu(torch.randn(2, 12, 5).half(), torch.randn(2, 5, 8).half(), **ARGS, shard_type=1)
    assert fake_ext.bound == [("forward", "/package.so", FWD), ("adjoint", "/builtin.so", ADJ)]
    assert [c[0] for c in fake_ext.calls] == ["forward", "adjoint"] * 3


@pytest.mark.parametrize("kind", ["package", "builtin"])
def test_aclnn_route_rejects_float32_before_launch(fake_ext, monkeypatch, kind):
    _route(monkeypatch, kind)
    with pytest.raises(ContractTypeError, match="on the NPU"):
        npu._forward_npu(torch.randn(4, 3, 8), torch.randn(2, 8, 5), **ARGS, shard_type=1)
    with pytest.raises(ContractTypeError, match="on the NPU"):
        npu._adjoint_npu(torch.randn(2, 12, 5), torch.randn(2, 5, 8), **ARGS, shard_type=1)
    assert fake_ext.calls == []


def test_shapes_beyond_cann_builtin_limits_run_portable_and_say_so_once(fake_ext, monkeypatch, caplog):
    from moe_mc2.runtime import adjoint, forward

    _route(monkeypatch, "builtin")
    monkeypatch.setattr(forward, "run", lambda *a, **k: "portable-forward")
    monkeypatch.setattr(adjoint, "run", lambda *a, **k: "portable-adjoint")
    x, w = torch.randn(128, 1, 8).half(), torch.randn(64, 8, 5).half()  # E = 128, E/ep = 64 > 32
    xa, wa = torch.randn(64, 4, 5).half(), torch.randn(64, 5, 8).half()
    with caplog.at_level(logging.WARNING, logger=npu.__name__):
        for _ in range(2):
            assert npu._forward_npu(x, w, **ARGS, shard_type=1) == "portable-forward"
            assert npu._adjoint_npu(xa, wa, **ARGS, shard_type=1) == "portable-adjoint"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all("E/ep = 64 > 32" in s for s in said)
    assert fake_ext.calls == []
    # the package's own kernel takes them
    _route(monkeypatch, "package")
    npu._forward_npu(x, w, **ARGS, shard_type=1)
    assert [c[0] for c in fake_ext.calls] == ["forward"]


# ---- registration without torch_npu -------------------------------------------------------------

@pytest.mark.skipif(HAS_TORCH_NPU, reason="checks the machine without torch_npu")
def test_without_torch_npu_nothing_is_registered():
    assert integration.register_all()["npu"] is False
    for op in ("npu_alltoall_allgather_bmm", "npu_bmm_reducescatter_alltoall"):
        assert not torch._C._dispatch_has_kernel_for_dispatch_key(f"moe_mc2::{op}", "PrivateUse1")
    with pytest.raises(ImportError):
        npu.register()


# ---- on an NPU ----------------------------------------------------------------------------------

@pytest.mark.npu
@needs_npu
def test_npu_kernels_are_registered_and_routes_said():
    import moe_mc2  # noqa: F401
    for op in ("npu_alltoall_allgather_bmm", "npu_bmm_reducescatter_alltoall"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"moe_mc2::{op}", "PrivateUse1")
    print(npu.describe_routes())


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


def npu_adjoint_rank_fn(ctx, shard_type, transposed):
    """One rank: eager NPU adjoint op vs the CPU reference of the same world."""
    import torch_npu  # noqa: F401
    import moe_mc2
    from moe_mc2 import reference_adjoint

    torch.npu.set_device(ctx.rank)
    ep, tp, E, C, H, N = ctx.ep, ctx.tp, 4, 8, 16, 8
    El = E // ep
    gen = torch.Generator().manual_seed(4321)
    xs = [torch.randn(El, ep * C, N, generator=gen).half() for _ in range(ctx.world_size)]
    ws = [torch.randn(El, H, N, generator=gen).half() for _ in range(ctx.world_size)]  # (E/ep, H, M/tp) storage
    hb = H if shard_type == 1 else H // tp
    bs = [torch.randn(El, hb, generator=gen).half() for _ in range(ctx.world_size)]
    want = reference_adjoint.adjoint(xs, [w.transpose(1, 2) for w in ws], bs, ep=ep, tp=tp,
                                     shard_type=shard_type)[ctx.rank]
    w = ws[ctx.rank].npu()
    w = w.transpose(1, 2) if transposed else w.transpose(1, 2).contiguous()
    got = moe_mc2.npu_bmm_reducescatter_alltoall(
        xs[ctx.rank].npu(), w, bias=bs[ctx.rank].npu(), group_ep=ctx.ep_group, group_ep_worldsize=ep,
        group_tp=ctx.tp_group, group_tp_worldsize=tp, shard_type=shard_type)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-2, atol=1e-2)
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
        assert world.run(npu_adjoint_rank_fn, shard_type, transposed) == [True] * 4
