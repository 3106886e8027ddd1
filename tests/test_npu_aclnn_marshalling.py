"""What would reach CANN: both ops through the real aclnn bridge core and fake op-API libraries.

The bridge's marshalling core (csrc/aclnn_core.h, the code the NPU build runs) is built here
against the pinned torch as a Python module whose launcher runs on the CPU
(tests/npu_fake/core_module.cpp). Fake op-API libraries (tests/npu_fake/fake_aclnn.cpp) are laid
out where an OPP package and a CANN toolkit put theirs: CANN's with its public entry points, the
package's with the real public wrapper (op_host/op_api) over a fake of the generated inner API.
The routes are resolved over them with the real symbol probe, bound with the real dlopen/dlsym,
and the NPU kernels of moe_mc2 are called with CPU tensors. The fakes record every
aclCreateTensor, GetWorkspaceSize, run and aclDestroyTensor; each test states the values CANN
must get, written from the op's contract and CANN's published signatures, never read back from
the code under test. On the package route that is the inner call the wrapper makes: the bridge's
public call, as the wrapper turns it into the OpDef's argument list.
"""
from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path

import pytest
import torch

from moe_mc2.integration import npu
from support import ext_build, torch_npu_wheel

HERE = Path(__file__).resolve().parent
FAKE_SRC = HERE / "npu_fake" / "fake_aclnn.cpp"
CORE_SRC = HERE / "npu_fake" / "core_module.cpp"

# CANN's published values (acl/acl_base.h)
ACL_FLOAT, ACL_FLOAT16, ACL_BF16 = 0, 1, 27
ACL_FORMAT_ND = 2
ACL_DTYPE = {torch.float16: ACL_FLOAT16, torch.bfloat16: ACL_BF16, torch.float32: ACL_FLOAT}
WORKSPACE = 4096
FWD = "aclnnAlltoAllAllGatherBatchMatMul"
INNER = "aclnnInnerAlltoAllAllGatherBatchMatMul"  # what the package's wrapper calls
ADJ = "aclnnBatchMatMulReduceScatterAlltoAll"
WRAPPER_SRC = HERE.parent / "op_host" / "op_api" / "aclnn_alltoall_allgather_bmm.cpp"


# ---- the builds (cached under build/ext) -------------------------------------------------------

def _acl_includes() -> list:
    """The wheel's ACL headers when the wheel can be had (so CANN's enum values are compiled in),
    plus CANN's aclnn/acl_meta.h under $CANN_INCLUDE; otherwise the bridge's own declarations."""
    try:
        include = torch_npu_wheel.ensure().include_root
    except torch_npu_wheel.WheelUnavailable:
        return []
    cann = ext_build.cann_aclnn_include()
    return [str(include)] + ([cann] if cann else [])


@pytest.fixture(scope="module")
def core():
    p = ext_build.plan("moe_mc2_aclnn_cpu_fake", [str(CORE_SRC)], build_dir=ext_build.BUILD / "core-fake",
                       extra_include_paths=[npu.CSRC_DIR, *_acl_includes()])
    return ext_build.build_module(p, Path(npu.CSRC_DIR).glob("*.h"))


class FakeLib:
    def __init__(self, path: Path):
        self.path = str(path)
        self.lib = ctypes.CDLL(self.path)
        self.lib.fake_events.restype = ctypes.c_char_p
        self.lib.fake_reset.argtypes = [ctypes.c_uint64, ctypes.c_int, ctypes.c_int]

    def reset(self, workspace=WORKSPACE, status_first=0, status_run=0):
        self.lib.fake_reset(workspace, status_first, status_run)

    def events(self) -> list:
        return json.loads(self.lib.fake_events().decode())


def package_library(out: Path) -> Path:
    """The package's libcust_opapi.so as the tests have it: the public wrapper (real) over the fake
    inner API; see tests/test_aclnn_wrapper.py for the header sets it is built against."""
    from test_aclnn_wrapper import HEADER_SETS, wrapper_inputs

    includes = HEADER_SETS["CANN"]() or HEADER_SETS["stand-in"]()
    return ext_build.build_shared_object([FAKE_SRC, WRAPPER_SRC], out, ["FAKE_INNER"], includes=includes,
                                         inputs=wrapper_inputs())


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """An OPP vendor dir with the package's library, CANN homes with and without the built-ins."""
    fake = ext_build.BUILD / "fake"
    built = {"package": package_library(fake / "libfake_package.so"),
             "builtin": ext_build.build_shared_object(FAKE_SRC, fake / "libfake_builtin.so", ["FAKE_BUILTIN"]),
             "bare": ext_build.build_shared_object(FAKE_SRC, fake / "libfake_bare.so")}
    root = tmp_path_factory.mktemp("npu_tree")
    places = {
        "package": root / "opp" / "vendors" / "moe_mc2" / "op_api" / "lib" / "libcust_opapi.so",
        "builtin": root / "cann" / "lib64" / "libopapi.so",
        "bare": root / "cann_without" / "lib64" / "libopapi.so",
        "bare_package": root / "opp_without" / "vendors" / "moe_mc2" / "op_api" / "lib" / "libcust_opapi.so",
        # the public entry points without the wrapper's version: a package built before the wrapper
        "stale_package": root / "opp_stale" / "vendors" / "moe_mc2" / "op_api" / "lib" / "libcust_opapi.so",
    }
    source = {"package": "package", "builtin": "builtin", "bare": "bare", "bare_package": "bare",
              "stale_package": "builtin"}
    for name, dest in places.items():
        dest.parent.mkdir(parents=True)
        shutil.copy(built[source[name]], dest)
    libs = {name: FakeLib(dest) for name, dest in places.items()}
    env = {
        "package+builtin": {"ASCEND_OPP_PATH": str(root / "opp"), "ASCEND_HOME_PATH": str(root / "cann")},
        "builtin": {"ASCEND_HOME_PATH": str(root / "cann")},
        "none": {"ASCEND_HOME_PATH": str(root / "cann_without")},
        "broken_package+builtin": {"ASCEND_OPP_PATH": str(root / "opp_without"),
                                   "ASCEND_HOME_PATH": str(root / "cann")},
        "stale_package+builtin": {"ASCEND_OPP_PATH": str(root / "opp_stale"),
                                  "ASCEND_HOME_PATH": str(root / "cann")},
    }
    return libs, env


@pytest.fixture
def use(core, tree, monkeypatch):
    """use(env_name) -> routes: resolve over the fake tree (real probe), bind through the core.
    One process, no peers: the cross-rank agreement before a launch is tests/test_npu_agreement.py's,
    and the groups named here are communicator names with no ProcessGroup behind them."""
    from moe_mc2.runtime import agreement, groups

    libs, envs = tree
    monkeypatch.setattr(agreement, "_override", False)
    monkeypatch.setattr(groups, "resolve", lambda op, arg, name, size: None)

    def _use(env_name):
        found = npu.resolve_routes(envs[env_name], torch_npu_present=True)
        monkeypatch.setattr(npu, "_ROUTES", found)
        monkeypatch.setattr(npu, "_bound", {})
        monkeypatch.setattr(npu, "load_extension", lambda: core)
        for lib in libs.values():
            lib.reset()
        return found
    return _use


# ---- resolution over real libraries ------------------------------------------------------------

def test_routes_prefer_the_package_then_cann(use, tree):
    libs, _ = tree
    r = use("package+builtin")
    assert (r["forward"].kind, r["forward"].library) == ("package", libs["package"].path)
    # the package ships no adjoint: CANN's built-in serves it
    assert (r["adjoint"].kind, r["adjoint"].library) == ("builtin", libs["builtin"].path)
    r = use("builtin")
    assert (r["forward"].kind, r["forward"].library) == ("builtin", libs["builtin"].path)
    assert (r["adjoint"].kind, r["adjoint"].library) == ("builtin", libs["builtin"].path)


def test_no_exported_symbol_means_portable_naming_it(use, tree):
    libs, _ = tree
    r = use("none")
    assert r["forward"].kind == r["adjoint"].kind == "portable"
    assert f"{libs['bare'].path}: does not export {FWD}GetWorkspaceSize, {FWD}" in r["forward"].missing
    assert f"{libs['bare'].path}: does not export {ADJ}GetWorkspaceSize, {ADJ}" in r["adjoint"].missing
    assert "moe_mc2 OPP package is not installed" in r["forward"].missing


def test_package_without_the_entry_point_falls_back_to_cann(use, tree):
    libs, _ = tree
    r = use("broken_package+builtin")
    assert (r["forward"].kind, r["forward"].library) == ("builtin", libs["builtin"].path)


def test_a_package_without_the_public_wrapper_is_not_called(use, tree):
    """Real libraries: the public entry points alone (no moe_mc2_aclnn_api_version) do not make a
    package the bridge calls; the built package exports the version."""
    libs, _ = tree
    r = use("stale_package+builtin")
    assert (r["forward"].kind, r["forward"].library) == ("builtin", libs["builtin"].path)
    assert r["forward"].skipped.startswith(f"{libs['stale_package'].path}: exports {FWD} but not "
                                           "moe_mc2_aclnn_api_version")
    version = libs["package"].lib.moe_mc2_aclnn_api_version
    version.restype = ctypes.c_int64
    assert version() == 1


def test_bind_reports_what_a_library_lacks(core, tree):
    libs, _ = tree
    with pytest.raises(RuntimeError, match=f"does not provide: {FWD}GetWorkspaceSize {FWD}$"):
        core.bind("forward", libs["bare"].path, FWD)
    with pytest.raises(RuntimeError, match="cannot load /nonexistent/libopapi.so"):
        core.bind("forward", "/nonexistent/libopapi.so", FWD)
    with pytest.raises(RuntimeError, match=f"{ADJ} cannot serve the forward op"):
        core.bind("forward", libs["builtin"].path, ADJ)
    with pytest.raises(RuntimeError, match=f"{FWD} cannot serve the adjoint op"):
        core.bind("adjoint", libs["package"].path, FWD)


# ---- helpers: what the fake saw ----------------------------------------------------------------

def contiguous_strides(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return list(reversed(out))


def expect_tensor(rec, *, view, strides, dtype, data, offset=0, storage=None):
    """One aclCreateTensor record against the values CANN must get."""
    want = dict(view=list(view), strides=list(strides), offset=offset, dtype=ACL_DTYPE[dtype],
                format=ACL_FORMAT_ND, storage=[storage if storage is not None else _numel(view)], data=data)
    got = {k: rec[k] for k in want}
    assert got == want


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def split(events, entry, stream):
    """(created tensors by id, first-stage args); checks the lifecycle: one first stage, one run
    with its executor, the workspace and the stream, then every tensor destroyed exactly once."""
    kinds = [e["event"] for e in events]
    assert kinds.count("get_workspace_size") == 1 and kinds.count("run") == 1, kinds
    first = next(e for e in events if e["event"] == "get_workspace_size")
    run = next(e for e in events if e["event"] == "run")
    assert first["entry"] == run["entry"] == entry
    assert run["executor"] == first["executor"]
    assert run["workspace_size"] == WORKSPACE and run["workspace"] != 0
    assert stream != 0 and run["stream"] == stream
    created = {e["id"]: e for e in events if e["event"] == "create"}
    destroyed = [e["id"] for e in events if e["event"] == "destroy"]
    assert sorted(destroyed) == sorted(created)
    assert min(events.index(e) for e in events if e["event"] == "destroy") > events.index(run)
    return created, first["args"]


# ---- the forward op: the whole argument matrix --------------------------------------------------

EP, TP, E, C, H, N = 2, 2, 4, 6, 8, 5  # per rank: El = 2, N = M/tp
EL = E // EP
OUTPUTS = [  # need_allgather_out, need_activation_feature, act_type
    (False, False, 0), (True, False, 1), (False, True, 2), (True, True, 4), (True, True, 0)]


def forward_inputs(shard, dtype, bias_kind, transposed):
    gen = torch.Generator().manual_seed(7)
    x_shape = (E, C // TP, H) if shard == 1 else (E, C, H // TP)
    x = torch.randn(x_shape, generator=gen).to(dtype)
    stored = torch.randn(EL, N, H, generator=gen).to(dtype)  # the (E/ep, M/tp, H) storage layout
    w = stored.transpose(1, 2) if transposed else stored.transpose(1, 2).contiguous()
    bias_dtype = torch.float16 if dtype == torch.float16 else torch.float32
    bias = {None: None, "2d": torch.randn(EL, N, generator=gen).to(bias_dtype),
            "3d": torch.randn(EL, 1, N, generator=gen).to(bias_dtype)}[bias_kind]
    return x, w, stored, bias


@pytest.mark.parametrize("outputs", OUTPUTS, ids=lambda o: f"y2={int(o[0])}-y3={int(o[1])}-act={o[2]}")
@pytest.mark.parametrize("transposed", [False, True], ids=["w", "wT"])
@pytest.mark.parametrize("bias_kind", [None, "2d", "3d"], ids=["nobias", "bias2d", "bias3d"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("shard", [0, 1], ids=["shard0", "shard1"])
@pytest.mark.parametrize("env", ["package+builtin", "builtin"], ids=["package", "builtin"])
def test_forward_arguments(use, tree, core, env, shard, dtype, bias_kind, transposed, outputs):
    libs, _ = tree
    need_y2, need_y3, act = outputs
    r = use(env)
    package = r["forward"].kind == "package"
    fake = libs[r["forward"].kind]
    x, w, stored, bias = forward_inputs(shard, dtype, bias_kind, transposed)
    y1, y2, y3 = npu._forward_npu(x, w, bias=bias, group_ep="hccl_ep", group_ep_worldsize=EP, group_tp="hccl_tp",
                                  group_tp_worldsize=TP, shard_type=shard, act_type=act,
                                  need_allgather_out=need_y2, need_activation_feature=need_y3)
    assert core.last_op_type() == "AlltoAllAllGatherBatchMatMul"
    events = fake.events()
    created, args = split(events, INNER if package else FWD, core.FAKE_STREAM)
    rows = EP * C  # y1 / y2 rows per local expert
    produce_y3 = need_y3 and act != 0
    # the bridge's call is the same on both routes: CANN's public argument list, the weight as its
    # logical (E/ep, H, M/tp) view, a transposed one recognised by its strides
    bridge = [e for e in events if e["event"] == "create"][:3 + (bias is not None) + need_y2 + produce_y3]
    logical = dict(view=(EL, H, N), strides=(H * N, 1, H) if transposed else (H * N, N, 1), dtype=dtype,
                   data=stored.data_ptr() if transposed else w.data_ptr())
    expect_tensor(bridge[1], **logical)
    if package:
        # the package's wrapper hands its generated inner API the OpDef's list: the three derived
        # attributes, and a transposed weight in its stored (E/ep, M/tp, H) layout (its own
        # descriptor of the same memory, destroyed after the run)
        assert len(args) == 15
        (a_x, a_w, a_b, g_ep, g_tp, ep, tp, a_shard, a_act, a_trans, f_y2, f_y3, a_y1, a_y2, a_y3) = args
        assert (a_trans, f_y2, f_y3) == (transposed, need_y2, produce_y3)
        if transposed:
            assert a_w not in [b["id"] for b in bridge]
            expect_tensor(created[a_w], view=(EL, N, H), strides=(N * H, H, 1), dtype=dtype, data=stored.data_ptr())
        else:
            assert a_w == bridge[1]["id"]
        assert len(created) == len(bridge) + transposed
    else:
        assert len(args) == 12
        (a_x, a_w, a_b, g_ep, g_tp, ep, tp, a_shard, a_act, a_y1, a_y2, a_y3) = args
        assert a_w == bridge[1]["id"]
        assert len(created) == len(bridge)
    assert (g_ep, g_tp, ep, tp, a_shard, a_act) == ("hccl_ep", "hccl_tp", EP, TP, shard, act)
    expect_tensor(created[a_x], view=x.shape, strides=contiguous_strides(x.shape), dtype=dtype, data=x.data_ptr())
    if bias is None:
        assert a_b is None
    else:
        expect_tensor(created[a_b], view=bias.shape, strides=contiguous_strides(bias.shape), dtype=bias.dtype,
                      data=bias.data_ptr())
    expect_tensor(created[a_y1], view=(EL, rows, N), strides=(rows * N, N, 1), dtype=dtype, data=y1.data_ptr())
    assert tuple(y1.shape) == (EL, rows, N)
    if need_y2:
        expect_tensor(created[a_y2], view=(EL, rows, H), strides=(rows * H, H, 1), dtype=dtype, data=y2.data_ptr())
    else:
        assert a_y2 is None and tuple(y2.shape) == (0, 0, 0)
    if produce_y3:
        expect_tensor(created[a_y3], view=(EL, rows, N), strides=(rows * N, N, 1), dtype=dtype, data=y3.data_ptr())
    else:
        assert a_y3 is None and tuple(y3.shape) == (0, 0, 0)
    assert not [e for e in events if e["event"] == "log"]  # the wrapper rejected nothing


# ---- the adjoint op: the whole argument matrix --------------------------------------------------

@pytest.mark.parametrize("transposed", [False, True], ids=["w", "wT"])
@pytest.mark.parametrize("bias_kind", [None, "2d", "3d"], ids=["nobias", "bias2d", "bias3d"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("shard", [0, 1], ids=["shard0", "shard1"])
def test_adjoint_arguments(use, tree, core, shard, dtype, bias_kind, transposed):
    libs, _ = tree
    r = use("package+builtin")
    assert r["adjoint"].kind == "builtin"
    gen = torch.Generator().manual_seed(11)
    rows = EP * C
    x = torch.randn(EL, rows, N, generator=gen).to(dtype)  # (E/ep, ep*C, M/tp)
    fwd_w = torch.randn(EL, H, N, generator=gen).to(dtype)  # a forward weight (E/ep, H, M/tp)
    w = fwd_w.transpose(1, 2) if transposed else fwd_w.transpose(1, 2).contiguous()  # logical (E/ep, M/tp, H)
    hb = H if shard == 1 else H // TP
    bias_dtype = torch.float16 if dtype == torch.float16 else torch.float32
    bias = {None: None, "2d": torch.randn(EL, hb, generator=gen).to(bias_dtype),
            "3d": torch.randn(EL, 1, hb, generator=gen).to(bias_dtype)}[bias_kind]
    out = npu._adjoint_npu(x, w, bias=bias, group_ep="hccl_ep", group_ep_worldsize=EP, group_tp="hccl_tp",
                           group_tp_worldsize=TP, shard_type=shard)
    assert core.last_op_type() == "BatchMatMulReduceScatterAlltoAll"
    created, args = split(libs["builtin"].events(), ADJ, core.FAKE_STREAM)
    # x, weight, bias, group_ep, group_tp, ep_world_size, tp_world_size, y_shard_type, out
    assert len(args) == 9
    a_x, a_w, a_b, g_ep, g_tp, ep, tp, a_shard, a_out = args
    assert (g_ep, g_tp, ep, tp, a_shard) == ("hccl_ep", "hccl_tp", EP, TP, shard)
    expect_tensor(created[a_x], view=(EL, rows, N), strides=(rows * N, N, 1), dtype=dtype, data=x.data_ptr())
    # logical (E/ep, M/tp, H) view; transpose_weight travels in the strides
    expect_tensor(created[a_w], view=(EL, N, H), strides=(N * H, 1, N) if transposed else (N * H, H, 1),
                  dtype=dtype, data=fwd_w.data_ptr() if transposed else w.data_ptr())
    if bias is None:
        assert a_b is None
    else:
        expect_tensor(created[a_b], view=bias.shape, strides=contiguous_strides(bias.shape), dtype=bias.dtype,
                      data=bias.data_ptr())
    want_out = (E, C // TP, H) if shard == 1 else (E, C, H // TP)
    assert tuple(out.shape) == want_out and out.dtype == dtype
    expect_tensor(created[a_out], view=want_out, strides=contiguous_strides(want_out), dtype=dtype,
                  data=out.data_ptr())
    assert len(created) == 3 + (bias is not None)


# ---- views, storage offsets, odd strides --------------------------------------------------------

def test_views_pass_their_storage_and_offset(use, tree, core):
    """A contiguous view into a larger buffer is described as torch holds it: the storage's base
    address, its element count and the view's offset (no copy)."""
    libs, _ = tree
    use("builtin")
    big = torch.randn(3 * E * C * (H // TP)).half()
    x = big[E * C * (H // TP):2 * E * C * (H // TP)].view(E, C, H // TP)
    bias_buf = torch.randn(EL * N + 3).half()
    bias = bias_buf[3:].view(EL, N)
    w = torch.randn(EL, H, N).half()
    npu._forward_npu(x, w, bias=bias, group_ep="a", group_ep_worldsize=EP, group_tp="b", group_tp_worldsize=TP)
    created, args = split(libs["builtin"].events(), FWD, core.FAKE_STREAM)
    expect_tensor(created[args[0]], view=x.shape, strides=contiguous_strides(x.shape), dtype=torch.float16,
                  data=big.data_ptr(), offset=E * C * (H // TP), storage=big.numel())
    expect_tensor(created[args[2]], view=(EL, N), strides=(N, 1), dtype=torch.float16, data=bias_buf.data_ptr(),
                  offset=3, storage=bias_buf.numel())


def test_non_contiguous_inputs_are_copied_first(use, tree, core):
    libs, _ = tree
    use("builtin")
    x = torch.randn(E, H // TP, C).half().transpose(1, 2)  # (E, C, H/tp), not contiguous
    w = torch.randn(EL, H, 2 * N).half()[:, :, ::2]  # neither contiguous nor a transpose
    npu._forward_npu(x, w, group_ep="a", group_ep_worldsize=EP, group_tp="b", group_tp_worldsize=TP)
    created, args = split(libs["builtin"].events(), FWD, core.FAKE_STREAM)
    assert created[args[0]]["strides"] == contiguous_strides(x.shape) and created[args[0]]["data"] != x.data_ptr()
    assert created[args[1]]["strides"] == [H * N, N, 1] and created[args[1]]["data"] != w.data_ptr()


def test_transposed_weight_with_a_single_expert_gets_cann_strides(use, tree, core):
    """torch calls a size-1 dim contiguous whatever its stride; CANN tests the batch stride too."""
    libs, _ = tree
    use("builtin")
    stored = torch.randn(1, N, H).half()
    w = stored.transpose(1, 2).as_strided((1, H, N), (999, 1, H))  # same elements, odd batch stride
    x = torch.randn(2, C, H // TP).half()  # E = 2 = El * ep
    npu._forward_npu(x, w, group_ep="a", group_ep_worldsize=EP, group_tp="b", group_tp_worldsize=TP)
    created, args = split(libs["builtin"].events(), FWD, core.FAKE_STREAM)
    expect_tensor(created[args[1]], view=(1, H, N), strides=(H * N, 1, H), dtype=torch.float16,
                  data=stored.data_ptr())


# ---- failures -----------------------------------------------------------------------------------

def test_first_stage_failure_raises_and_releases_everything(use, tree):
    libs, _ = tree
    use("package+builtin")
    libs["package"].reset(status_first=161002)
    x, w, _, bias = forward_inputs(1, torch.float16, "2d", True)
    with pytest.raises(RuntimeError, match=f"{FWD}GetWorkspaceSize \\(.*libcust_opapi.so\\) "
                                           "failed with aclnn status 161002"):
        npu._forward_npu(x, w, bias=bias, group_ep="a", group_ep_worldsize=EP, group_tp="b",
                         group_tp_worldsize=TP, shard_type=1)
    events = libs["package"].events()
    assert not [e for e in events if e["event"] == "run"]
    created = [e["id"] for e in events if e["event"] == "create"]
    assert len(created) == 5  # x, weight, bias, y1 by the bridge; the stored weight by the wrapper
    assert sorted(e["id"] for e in events if e["event"] == "destroy") == sorted(created)


def test_run_failure_raises_and_releases_everything(use, tree):
    libs, _ = tree
    use("builtin")
    libs["builtin"].reset(status_run=507011)
    x = torch.randn(EL, EP * C, N).half()
    w = torch.randn(EL, N, H).half()
    with pytest.raises(RuntimeError, match=f"{ADJ} failed with aclnn status 507011"):
        npu._adjoint_npu(x, w, group_ep="a", group_ep_worldsize=EP, group_tp="b", group_tp_worldsize=TP)
    events = libs["builtin"].events()
    assert sorted(e["id"] for e in events if e["event"] == "destroy") == \
        sorted(e["id"] for e in events if e["event"] == "create")


def test_zero_workspace_passes_null(use, tree):
    libs, _ = tree
    use("builtin")
    libs["builtin"].reset(workspace=0)
    x = torch.randn(EL, EP * C, N).half()
    npu._adjoint_npu(x, torch.randn(EL, N, H).half(), group_ep="a", group_ep_worldsize=EP, group_tp="b",
                     group_tp_worldsize=TP)
    run = next(e for e in libs["builtin"].events() if e["event"] == "run")
    assert (run["workspace"], run["workspace_size"]) == (0, 0)


def test_the_acl_types_compiled_in(core):
    """With the wheel, the core was compiled against the real acl/acl_base.h (the values the
    expectations above state are then CANN's own); without it, against aclnn_decls.h."""
    assert core.ACL_TYPES_FROM == ("acl/acl_base.h" if _acl_includes() else "aclnn_decls.h")


# ---- group arguments: HCCL communicator names whichever form the caller used ---------------------

@pytest.fixture
def one_rank_world(monkeypatch):
    import torch.distributed as dist
    from moe_mc2.runtime import groups

    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ep_group, tp_group = dist.new_group([0]), dist.new_group([0])
        names = {ep_group.group_name: "hccl_comm_ep_7", tp_group.group_name: "hccl_comm_tp_9"}
        # what ProcessGroupHCCL would answer for each group on this rank
        monkeypatch.setattr(groups, "_hccl_comm_name", lambda g: names.get(g.group_name))
        yield ep_group, tp_group
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("form", ["ProcessGroup", "c10d name", "communicator name"])
def test_groups_reach_aclnn_as_communicator_names(use, tree, core, one_rank_world, form):
    from moe_mc2.runtime.groups import group_name

    libs, _ = tree
    use("package+builtin")
    ep_group, tp_group = one_rank_world
    given = {
        "ProcessGroup": (group_name(ep_group), group_name(tp_group)),  # what the public entry point passes
        "c10d name": (ep_group.group_name, tp_group.group_name),
        "communicator name": ("hccl_comm_ep_7", "hccl_comm_tp_9"),
    }[form]
    x, w, _, _ = forward_inputs(0, torch.float16, None, False)
    npu._forward_npu(x, w, group_ep=given[0], group_ep_worldsize=EP, group_tp=given[1], group_tp_worldsize=TP)
    _, args = split(libs["package"].events(), INNER, core.FAKE_STREAM)
    assert args[3:5] == ["hccl_comm_ep_7", "hccl_comm_tp_9"]
    xa = torch.randn(EL, EP * C, N).half()
    npu._adjoint_npu(xa, torch.randn(EL, N, H).half(), group_ep=given[0], group_ep_worldsize=EP,
                     group_tp=given[1], group_tp_worldsize=TP)
    _, args = split(libs["builtin"].events(), ADJ, core.FAKE_STREAM)
    assert args[3:5] == ["hccl_comm_ep_7", "hccl_comm_tp_9"]


def test_core_refuses_a_weight_that_contradicts_transpose_weight(use, tree, core):
    """The core holds the Python side to CANN's notion of a transposed weight before any call."""
    libs, _ = tree
    use("package+builtin")
    npu.extension_for(npu.routes()["forward"])
    npu.extension_for(npu.routes()["adjoint"])
    x = torch.randn(E, C, H // TP).half()
    y1 = torch.empty(EL, EP * C, N).half()
    plain = torch.randn(EL, H, N).half()
    with pytest.raises(RuntimeError, match="the weight must be contiguous or, with transpose_weight"):
        core.forward(x, plain, None, "a", "b", EP, TP, 0, 0, True, y1, None, None)  # flag without the layout
    with pytest.raises(RuntimeError, match="the weight must be contiguous or, with transpose_weight"):
        core.forward(x, torch.randn(EL, H, 2 * N).half()[:, :, ::2], None, "a", "b", EP, TP, 0, 0, False, y1,
                     None, None)  # neither layout
    with pytest.raises(RuntimeError, match="the weight must be contiguous or, with transpose_weight"):
        core.adjoint(torch.randn(EL, EP * C, N).half(), torch.randn(EL, N, H).half(), None, "a", "b", EP, TP, 0,
                     True, torch.empty(E, C, H // TP).half())
    assert [e for e in libs["package"].events() + libs["builtin"].events() if e["event"] != "destroy"] == []
