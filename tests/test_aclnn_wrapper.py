"""The OPP package's public aclnn API (op_host/op_api): CANN's signature over the generated inner one.

1. Run without CANN. The wrapper (op_host/op_api/aclnn_alltoall_allgather_bmm.cpp, the contract's
   rules from op_host/core compiled in) is linked into one shared object with a fake of
   acl_meta.h and of the opbuild-generated aclnnInner... API (tests/npu_fake/fake_aclnn.cpp, which
   records every call as JSON). ctypes makes the caller's aclTensors and calls the public entry
   points. For the whole argument matrix (shard type x dtype x bias none/2-D/3-D x weight
   contiguous/transposed view x y2 null/given x y3 null/given x act 0..4) each case states the
   inner call CANN's public API must become: every attribute, transpose_weight, both output
   flags, the tensors handed on (the caller's own, or for a transposed weight a descriptor of the
   same memory in its stored layout: view, strides, offset, storage shape, address, dtype,
   format), the second stage with the same executor, workspace and stream, and the wrapper's
   descriptor destroyed after it. Then every rejection (status, logged reason, no inner call) and
   the descriptor's lifetime when the inner API fails or reuses an executor. Built against the
   stand-in headers in tests/npu_fake/include always, and against CANN's own headers
   ($CANN_INCLUDE's opbase, the torch-npu wheel's acl/) when both are at hand.
2. Compiled (-fsyntax-only) as C++11, the msOpGen project's language level: against CANN's
   headers; against an opbuild-style generated inner header as the package build compiles it
   (MOE_MC2_ACLNN_INNER_HEADER), with a negative control for its static_assert.
3. Declarations: the public header's parameters, names and types, are CANN's published ones and
   the OpDef's minus the three derived attributes; the inner declaration is what opbuild's rules
   make of the OpDef; with $MOE_MC2_OPS_TRANSFORMER (a clone or git dir of hicann/ops-transformer)
   also against CANN's header and CANN's own declaration of its inner function.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from moe_mc2.contract.names import GE_OP_TYPE
from moe_mc2.integration import npu
from support import ext_build, torch_npu_wheel
from support.cann_sources import parse_op_def

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
API_DIR = ROOT / "op_host" / "op_api"
WRAPPER = API_DIR / "aclnn_alltoall_allgather_bmm.cpp"
PUBLIC_H = API_DIR / "aclnn_alltoall_allgather_bmm.h"
INNER_H = API_DIR / "aclnn_alltoall_allgather_bmm_inner.h"
FAKE = HERE / "npu_fake" / "fake_aclnn.cpp"
STAND_IN = HERE / "npu_fake" / "include"

FWD = "aclnnAlltoAllAllGatherBatchMatMul"
INNER = "aclnnInnerAlltoAllAllGatherBatchMatMul"
ACL_FLOAT, ACL_FLOAT16, ACL_BF16, ACL_FORMAT_ND, ACL_ERROR = 0, 1, 27, 2, 3  # CANN's acl_base.h values
NULLPTR, INVALID = 161001, 161002  # ACLNN_ERR_PARAM_NULLPTR / _INVALID


def _cann_includes():
    """CANN's opbase aclnn headers ($CANN_INCLUDE) and acl/ from the torch-npu wheel, or None."""
    cann = ext_build.cann_aclnn_include()
    if cann is None:
        return None
    try:
        wheel = torch_npu_wheel.ensure()
    except torch_npu_wheel.WheelUnavailable:
        return None
    return [cann, str(wheel.include_root / "third_party" / "acl" / "inc")]


HEADER_SETS = {"stand-in": lambda: [str(STAND_IN)], "CANN": _cann_includes}


def wrapper_inputs() -> list:
    """Every file a build of the wrapper depends on besides its command line."""
    return [*API_DIR.glob("*.h"), *API_DIR.glob("*.cpp"), ROOT / "op_host" / "core" / "aag_bmm_rules.h",
            ROOT / "op_host" / "core" / "aag_bmm_rules.cpp", *STAND_IN.rglob("*.h")]


def build_wrapper(header_set: str) -> Path:
    includes = HEADER_SETS[header_set]()
    if includes is None:
        pytest.skip("CANN's headers need $CANN_INCLUDE (opbase/include/nnopbase/aclnn/acl_meta.h) and the "
                    "torch-npu wheel (acl/acl_base.h)")
    return ext_build.build_shared_object([FAKE, WRAPPER], ext_build.BUILD / "fake" / f"libwrapper_{header_set}.so",
                                         ["FAKE_INNER"], includes=includes, inputs=wrapper_inputs())


# ---- the library through ctypes -----------------------------------------------------------------

class Tensor:
    def __init__(self, ptr: int, record: dict):
        self.ptr, self.id, self.record = ptr, record["id"], record


class Lib:
    """The wrapper + fake: make aclTensors, call both stages, read what the fake saw."""

    def __init__(self, path: Path):
        c = ctypes
        self.lib = lib = c.CDLL(str(path))
        lib.fake_events.restype = c.c_char_p
        lib.fake_reset.argtypes = [c.c_uint64, c.c_int, c.c_int]
        lib.fake_reuse_executor.argtypes = [c.c_int]
        i64p = c.POINTER(c.c_int64)
        lib.aclCreateTensor.restype = c.c_void_p
        lib.aclCreateTensor.argtypes = [i64p, c.c_uint64, c.c_int, i64p, c.c_int64, c.c_int, i64p, c.c_uint64,
                                        c.c_void_p]
        lib.aclDestroyTensor.argtypes = [c.c_void_p]
        first = getattr(lib, FWD + "GetWorkspaceSize")
        first.restype = c.c_int32
        first.argtypes = [c.c_void_p] * 3 + [c.c_char_p] * 2 + [c.c_int64] * 4 + [c.c_void_p] * 3 + \
            [c.POINTER(c.c_uint64), c.POINTER(c.c_void_p)]
        self.first_stage = first
        run = getattr(lib, FWD)
        run.restype = c.c_int32
        run.argtypes = [c.c_void_p, c.c_uint64, c.c_void_p, c.c_void_p]
        self.second_stage = run
        lib.moe_mc2_aclnn_api_version.restype = c.c_int64

    def reset(self, workspace=4096, status_first=0, status_run=0):
        self.lib.fake_reset(workspace, status_first, status_run)

    def events(self) -> list:
        return json.loads(self.lib.fake_events().decode())

    def tensor(self, view, strides=None, *, dtype=ACL_FLOAT16, offset=0, storage=None, data=0x10000,
               fmt=ACL_FORMAT_ND) -> Tensor:
        strides = list(strides) if strides is not None else contiguous(view)
        storage = list(storage) if storage is not None else [numel(view)]
        arr = ctypes.c_int64 * max(len(view), 1)
        ptr = self.lib.aclCreateTensor(arr(*view), len(view), dtype, arr(*strides), offset, fmt,
                                       (ctypes.c_int64 * len(storage))(*storage), len(storage), data)
        return Tensor(ptr, self.events()[-1])

    def call(self, x, w, bias, group_ep, group_tp, ep, tp, shard, act, y1, y2, y3, *, workspace_size=True,
             executor=True):
        ws, ex = ctypes.c_uint64(0), ctypes.c_void_p(0)
        status = self.first_stage(*[t.ptr if t is not None else None for t in (x, w, bias)],
                                  None if group_ep is None else group_ep.encode(),
                                  None if group_tp is None else group_tp.encode(), ep, tp, shard, act,
                                  *[t.ptr if t is not None else None for t in (y1, y2, y3)],
                                  ctypes.byref(ws) if workspace_size else None,
                                  ctypes.byref(ex) if executor else None)
        return status, ws.value, ex.value or 0

    def run(self, executor, workspace_size, workspace=0x2000, stream=0x5eed) -> int:
        return self.second_stage(workspace, workspace_size, executor, stream)


def contiguous(shape):
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return list(reversed(out))


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


@pytest.fixture(scope="module", params=list(HEADER_SETS))
def lib(request):
    return Lib(build_wrapper(request.param))


# ---- 1. the argument matrix ---------------------------------------------------------------------

EP, TP, E, C, H, N = 2, 2, 4, 6, 8, 5  # per rank: El = E/ep = 2, N = M/tp
EL, ROWS = E // EP, EP * C
W_OFFSET, W_STORAGE, W_DATA = 7, [7 + EL * H * N + 3], 0x20000  # the weight: a view inside a larger buffer
GROUP_EP, GROUP_TP = "hccl_comm_ep_3", "hccl_comm_tp_5"
OUTPUTS = [(y2, y3, act) for y2 in (False, True) for y3 in (False, True) for act in range(5) if not (y3 and act == 0)]


def make_inputs(lib, shard, dtype, bias_kind, transposed):
    x_shape = (E, C // TP, H) if shard == 1 else (E, C, H // TP)
    x = lib.tensor(x_shape, dtype=dtype, data=0x10000)
    strides = (H * N, 1, H) if transposed else (H * N, N, 1)  # the (El, H, N) view of a stored (El, N, H)
    w = lib.tensor((EL, H, N), strides, dtype=dtype, offset=W_OFFSET, storage=W_STORAGE, data=W_DATA)
    bias_dtype = ACL_FLOAT16 if dtype == ACL_FLOAT16 else ACL_FLOAT
    bias = {None: None, "2d": lambda: lib.tensor((EL, N), dtype=bias_dtype, data=0x30000),
            "3d": lambda: lib.tensor((EL, 1, N), dtype=bias_dtype, data=0x30000)}[bias_kind]
    return x, w, bias() if bias else None


def make_outputs(lib, dtype, want_y2, want_y3):
    y1 = lib.tensor((EL, ROWS, N), dtype=dtype, data=0x40000)
    y2 = lib.tensor((EL, ROWS, H), dtype=dtype, data=0x50000) if want_y2 else None
    y3 = lib.tensor((EL, ROWS, N), dtype=dtype, data=0x60000) if want_y3 else None
    return y1, y2, y3


@pytest.mark.parametrize("transposed", [False, True], ids=["w", "wT"])
@pytest.mark.parametrize("bias_kind", [None, "2d", "3d"], ids=["nobias", "bias2d", "bias3d"])
@pytest.mark.parametrize("dtype", [ACL_FLOAT16, ACL_BF16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("shard", [0, 1], ids=["shard0", "shard1"])
def test_the_inner_call_of_every_public_call(lib, shard, dtype, bias_kind, transposed):
    x, w, bias = make_inputs(lib, shard, dtype, bias_kind, transposed)
    for want_y2, want_y3, act in OUTPUTS:
        case = f"y2={want_y2} y3={want_y3} act={act}"
        y1, y2, y3 = make_outputs(lib, dtype, want_y2, want_y3)
        lib.reset(workspace=4096)
        status, ws, executor = lib.call(x, w, bias, GROUP_EP, GROUP_TP, EP, TP, shard, act, y1, y2, y3)
        assert (status, ws) == (0, 4096), (case, lib.events())
        assert lib.run(executor, ws) == 0, case
        events = lib.events()
        kinds = [e["event"] for e in events]
        assert kinds == (["create", "get_workspace_size", "run", "destroy"] if transposed
                         else ["get_workspace_size", "run"]), (case, events)
        first = next(e for e in events if e["event"] == "get_workspace_size")
        run = next(e for e in events if e["event"] == "run")
        assert first["entry"] == run["entry"] == INNER, case
        assert (run["executor"], run["workspace"], run["workspace_size"], run["stream"]) == \
            (first["executor"], 0x2000, 4096, 0x5eed), case
        if transposed:
            stored = events[0]
            # the same memory in its stored (El, N, H) layout: dims and strides 1, 2 swapped
            assert {k: stored[k] for k in ("view", "strides", "offset", "storage", "data", "dtype", "format")} == \
                dict(view=[EL, N, H], strides=[H * N, H, 1], offset=W_OFFSET, storage=W_STORAGE, data=W_DATA,
                     dtype=dtype, format=ACL_FORMAT_ND), case
            assert events[-1] == {"event": "destroy", "id": stored["id"]}, case  # after the run
        weight_id = events[0]["id"] if transposed else w.id
        assert first["args"] == [
            x.id, weight_id, None if bias is None else bias.id, GROUP_EP, GROUP_TP, EP, TP, shard, act,
            transposed, want_y2, want_y3, y1.id, None if y2 is None else y2.id, None if y3 is None else y3.id,
        ], case


def test_the_api_version(lib):
    assert lib.lib.moe_mc2_aclnn_api_version() == 1


# ---- which weights count as transposed (CANN's criterion) ----------------------------------------

def _weight_case(lib, w_shape, strides, *, x_shape=(E, C // TP, H), y1_shape=None, offset=0, storage=None):
    x = lib.tensor(x_shape)
    w = lib.tensor(w_shape, strides, offset=offset, storage=storage, data=W_DATA)
    el, n = w_shape[0], w_shape[2]
    y1 = lib.tensor(y1_shape or (el, ROWS, n))
    lib.reset()
    status, ws, executor = lib.call(x, w, None, GROUP_EP, GROUP_TP, EP, TP, 1, 1, y1, None, None)
    assert status == 0, lib.events()
    assert lib.run(executor, ws) == 0
    events = lib.events()
    first = next(e for e in events if e["event"] == "get_workspace_size")
    created = [e for e in events if e["event"] == "create"]
    return w, first["args"], created


@pytest.mark.parametrize("name, shape, strides, transposed", [
    ("contiguous", (EL, H, N), (H * N, N, 1), False),
    ("transposed", (EL, H, N), (H * N, 1, H), True),
    ("transposed, padded batch stride", (EL, H, N), (H * N + 8, 1, H), False),
    ("strided slice", (EL, H, N), (H * 2 * N, 2 * N, 2), False),
    ("transposed, N = 1", (EL, H, 1), (H, 1, H), True),
    ("contiguous, N = 1", (EL, H, 1), (H, 1, 1), False),
])
def test_transpose_weight_comes_from_the_strides(lib, name, shape, strides, transposed):
    w, args, created = _weight_case(lib, shape, strides, storage=[4 * numel(shape)])
    assert args[9] is transposed, name
    if transposed:
        assert len(created) == 1 and args[1] == created[0]["id"]
        assert created[0]["view"] == [shape[0], shape[2], shape[1]]
        assert created[0]["strides"] == [strides[0], strides[2], strides[1]]
    else:  # handed on as the caller made it (the inner API's AutoContiguous copies it if it must)
        assert created == [] and args[1] == w.id


def test_a_single_expert_with_any_batch_stride_is_not_transposed(lib):
    """CANN requires the batch stride to be the matrix size, even where torch would not care."""
    w, args, created = _weight_case(lib, (1, H, N), (999, 1, H), x_shape=(EP, C // TP, H))
    assert args[9] is False and created == [] and args[1] == w.id


def test_a_one_by_one_matrix_is_not_transposed(lib):
    """H = M/tp = 1: every stride is 1, the view is both; CANN says not transposed, and so do we."""
    w, args, created = _weight_case(lib, (EL, 1, 1), (1, 1, 1), x_shape=(E, C // TP, 1))
    assert args[9] is False and created == [] and args[1] == w.id


# ---- 1b. what the wrapper rejects ---------------------------------------------------------------

def _base(lib):
    """A valid call (shard 1, float16, no bias, contiguous weight, no y2 / y3, GELU) as keywords."""
    return dict(x=lib.tensor((E, C // TP, H)), w=lib.tensor((EL, H, N)), bias=None, group_ep=GROUP_EP,
                group_tp=GROUP_TP, ep=EP, tp=TP, shard=1, act=1, y1=lib.tensor((EL, ROWS, N)), y2=None, y3=None)


REJECTIONS = {  # name: (change of the base call, status, the logged reason)
    "x null": (lambda lib, a: a.update(x=None), NULLPTR, "x is null"),
    "weight null": (lambda lib, a: a.update(w=None), NULLPTR, "weight is null"),
    "y1Out null": (lambda lib, a: a.update(y1=None), NULLPTR, "y1Out is null"),
    "groupEp null": (lambda lib, a: a.update(group_ep=None), NULLPTR, "groupEp is null or empty"),
    "groupTp empty": (lambda lib, a: a.update(group_tp=""), NULLPTR, "groupTp is null or empty"),
    "workspaceSize null": (lambda lib, a: a.update(workspace_size=False), NULLPTR, "workspaceSize is null"),
    "executor null": (lambda lib, a: a.update(executor=False), NULLPTR, "executor is null"),
    "ep 3": (lambda lib, a: a.update(ep=3), INVALID,
             "epWorldSize: got 3, must be in {2, 4, 8, 16} on the NPU"),
    "ep 1 (the portable runtime takes it, the NPU kernel does not)": (lambda lib, a: a.update(ep=1), INVALID,
                                                                       "epWorldSize: got 1, must be in {2, 4, 8, 16} on the NPU"),
    "tp 32 (CANN's kernel takes it, this one does not)": (lambda lib, a: a.update(tp=32), INVALID,
                                                          "[rule tp.world_size]"),
    "shard type 2": (lambda lib, a: a.update(shard=2), INVALID, "xShardType: got 2, must be 0 or 1"),
    "act 5": (lambda lib, a: a.update(act=5), INVALID, "[rule act_type.value]"),
    "same groups": (lambda lib, a: a.update(group_tp=GROUP_EP), INVALID,
                    f"groupTp: '{GROUP_EP}' must differ from group_ep [rule group.distinct]"),
    "group name of 128": (lambda lib, a: a.update(group_ep="g" * 128), INVALID,
                          "groupEp: length 128, must be non-empty and shorter than 128 [rule group.name]"),
    "x float32": (lambda lib, a: a.update(x=lib.tensor((E, C // TP, H), dtype=ACL_FLOAT)), INVALID,
                  "x: dtype float32 must be float16 or bfloat16 on the NPU [rule x.dtype]"),
    "x 4-D": (lambda lib, a: a.update(x=lib.tensor((E, C // TP, H, 1))), INVALID, "[rule x.rank]"),
    "weight bf16, x fp16": (lambda lib, a: a.update(w=lib.tensor((EL, H, N), dtype=ACL_BF16)), INVALID,
                            "[rule weight.dtype]"),
    "weight 2-D": (lambda lib, a: a.update(w=lib.tensor((H, N))), INVALID, "[rule weight.rank]"),
    "weight experts": (lambda lib, a: a.update(w=lib.tensor((EL + 1, H, N))), INVALID, "[rule weight.experts]"),
    "weight hidden": (lambda lib, a: a.update(w=lib.tensor((EL, H + 1, N))), INVALID, "[rule weight.hidden]"),
    "E 4096": (lambda lib, a: a.update(x=lib.tensor((4096, 1, H))), INVALID, "[rule E.range]"),
    "bias shape": (lambda lib, a: a.update(bias=lib.tensor((EL, 2, N))), INVALID,
                   "biasOptional: shape (2, 2, 5) must be (2, 5) or (2, 1, 5) [rule bias.shape]"),
    "bias bf16 for bf16 x": (lambda lib, a: a.update(x=lib.tensor((E, C // TP, H), dtype=ACL_BF16),
                                                     w=lib.tensor((EL, H, N), dtype=ACL_BF16),
                                                     y1=lib.tensor((EL, ROWS, N), dtype=ACL_BF16),
                                                     bias=lib.tensor((EL, N), dtype=ACL_BF16)), INVALID,
                             "biasOptional: dtype bfloat16 must be float32 for x dtype bfloat16 [rule bias.dtype]"),
    "y3 with act 0": (lambda lib, a: a.update(act=0, y3=lib.tensor((EL, ROWS, N))), INVALID,
                      "y3OutOptional is given with actType 0 (None)"),
    "y1 rows": (lambda lib, a: a.update(y1=lib.tensor((EL, ROWS - 1, N))), INVALID,
                f"y1Out is [{EL}, {ROWS - 1}, {N}] of dtype float16, must be [{EL}, {ROWS}, {N}] of x's dtype"),
    "y1 dtype": (lambda lib, a: a.update(y1=lib.tensor((EL, ROWS, N), dtype=ACL_BF16)), INVALID,
                 "y1Out is [2, 12, 5] of dtype bfloat16, must be [2, 12, 5] of x's dtype float16"),
    "y2 shape": (lambda lib, a: a.update(y2=lib.tensor((EL, ROWS, N))), INVALID,
                 f"y2OutOptional is [{EL}, {ROWS}, {N}] of dtype float16, must be [{EL}, {ROWS}, {H}]"),
    "y3 2-D": (lambda lib, a: a.update(y3=lib.tensor((EL, ROWS * N))), INVALID, "y3OutOptional is [2, 60]"),
}


@pytest.mark.parametrize("name", list(REJECTIONS))
def test_rejections_name_the_argument_and_call_nothing(lib, name):
    change, want_status, reason = REJECTIONS[name]
    a = _base(lib)
    change(lib, a)
    lib.reset()
    status, _, executor = lib.call(a.pop("x"), a.pop("w"), a.pop("bias"), a.pop("group_ep"), a.pop("group_tp"),
                                   a.pop("ep"), a.pop("tp"), a.pop("shard"), a.pop("act"), a.pop("y1"),
                                   a.pop("y2"), a.pop("y3"), **a)
    events = lib.events()
    assert status == want_status and executor == 0
    assert [e["event"] for e in events] == ["log"], events  # nothing created, nothing called
    log = events[0]
    assert (log["level"], log["func"]) == (ACL_ERROR, FWD + "GetWorkspaceSize")
    assert log["message"].startswith(f"{FWD}GetWorkspaceSize (moe_mc2): ") and reason in log["message"], log


def test_a_valid_base_call_passes(lib):
    """The base of the rejections above is itself accepted (each rejection is its one change)."""
    a = _base(lib)
    lib.reset()
    status, ws, executor = lib.call(a["x"], a["w"], None, GROUP_EP, GROUP_TP, EP, TP, 1, 1, a["y1"], None, None)
    assert status == 0 and executor != 0 and lib.run(executor, ws) == 0


# ---- 1c. the stored-layout descriptor's lifetime -------------------------------------------------

def _transposed_call(lib):
    x, w, _ = make_inputs(lib, 1, ACL_FLOAT16, None, True)
    y1, _, _ = make_outputs(lib, ACL_FLOAT16, False, False)
    return lambda: lib.call(x, w, None, GROUP_EP, GROUP_TP, EP, TP, 1, 1, y1, None, None)


def test_inner_first_stage_failure_is_returned_and_releases_the_descriptor(lib):
    call = _transposed_call(lib)
    lib.reset(status_first=561002)
    status, _, executor = call()
    events = lib.events()
    assert (status, executor) == (561002, 0)
    assert [e["event"] for e in events] == ["create", "get_workspace_size", "destroy"]
    assert events[2]["id"] == events[0]["id"] and events[1]["args"][1] == events[0]["id"]


def test_inner_run_failure_is_returned_and_releases_the_descriptor(lib):
    call = _transposed_call(lib)
    lib.reset(status_run=507011)
    status, ws, executor = call()
    assert status == 0
    assert lib.run(executor, ws) == 507011
    events = lib.events()
    assert [e["event"] for e in events] == ["create", "get_workspace_size", "run", "destroy"]
    assert events[3]["id"] == events[0]["id"]


def test_an_executor_handed_out_again_releases_the_old_descriptor(lib):
    """A first stage without its second, then another that gets the same executor (nnopbase
    reuses them): the first call's descriptor goes when its executor is taken over."""
    call = _transposed_call(lib)
    lib.reset()
    lib.lib.fake_reuse_executor(1)
    s1, ws, e1 = call()
    s2, ws, e2 = call()
    assert (s1, s2) == (0, 0) and e1 == e2
    assert lib.run(e2, ws) == 0
    events = lib.events()
    assert [e["event"] for e in events] == ["create", "get_workspace_size", "create", "get_workspace_size",
                                            "destroy", "run", "destroy"]
    first, second = events[0]["id"], events[2]["id"]
    assert events[3]["args"][1] == second
    assert events[4]["id"] == first and events[6]["id"] == second


# ---- 2. compiled as the package build compiles it ------------------------------------------------

def _compile(args: list, inputs: list, *, cwd=None) -> tuple:
    """(returncode, stderr) of a g++ -fsyntax-only run, remembered under build/ by its command and inputs."""
    cmd = ["g++", "-fsyntax-only", *args]
    stamp = ext_build.BUILD / "syntax" / f"{ext_build._digest(cmd, inputs)}.json"
    if stamp.is_file():
        got = json.loads(stamp.read_text())
        return got["rc"], got["err"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"rc": r.returncode, "err": r.stderr[-6000:]}))
    return r.returncode, r.stderr[-6000:]


def test_wrapper_compiles_as_cxx11_against_cann_headers():
    includes = _cann_includes()
    if includes is None:
        pytest.skip("needs $CANN_INCLUDE (CANN's opbase headers) and the torch-npu wheel (acl/acl_base.h)")
    rc, err = _compile(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
                        *[f"-I{i}" for i in includes], str(WRAPPER)], wrapper_inputs())
    assert rc == 0, err


@pytest.fixture(scope="module")
def opdef():
    return parse_op_def((ROOT / "op_host" / "aag_bmm_def.cpp").read_text(), GE_OP_TYPE)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


OPBUILD_C_TYPE = {"str": "char *", "int": "int64_t", "bool": "bool"}  # opbuild's goldens (asc-devkit)


def opbuild_params(opdef) -> list:
    """(type, name) of the first stage opbuild generates from an OpDef: inputs, attributes, outputs."""
    out = [("const aclTensor *", _camel(n) + ("Optional" if kind == "OPTIONAL" else ""))
           for n, kind, _ in opdef["inputs"]]
    out += [(OPBUILD_C_TYPE[kind], _camel(n) + ("" if required else "Optional"))
            for n, kind, required, _ in opdef["attrs"]]
    out += [("const aclTensor *", _camel(n) + "Out" + ("Optional" if kind == "OPTIONAL" else ""))
            for n, kind, _ in opdef["outputs"]]
    return out + [("uint64_t *", "workspaceSize"), ("aclOpExecutor **", "executor")]


def generated_inner_header(params: list) -> str:
    """A header in the shape opbuild writes for the inner API (OPS_PROJECT_NAME=aclnnInner)."""
    args = ",\n    ".join(f"{t}{n}" if t.endswith("*") else f"{t} {n}" for t, n in params)
    return ("#ifndef ACLNN_INNER_ALLTO_ALL_ALL_GATHER_BATCH_MAT_MUL_H_\n"
            "#define ACLNN_INNER_ALLTO_ALL_ALL_GATHER_BATCH_MAT_MUL_H_\n"
            '#include "aclnn/acl_meta.h"\n#ifdef __cplusplus\nextern "C" {\n#endif\n'
            f'__attribute__((visibility("default")))\naclnnStatus {INNER}GetWorkspaceSize(\n    {args});\n'
            f'__attribute__((visibility("default")))\naclnnStatus {INNER}(\n    void *workspace,\n'
            "    uint64_t workspaceSize,\n    aclOpExecutor *executor,\n    aclrtStream stream);\n"
            "#ifdef __cplusplus\n}\n#endif\n#endif\n")


def _compile_with_generated(tmp_path, params):
    name = "aclnnInner_allto_all_all_gather_batch_mat_mul.h"
    (tmp_path / name).write_text(generated_inner_header(params))
    return _compile(["-std=c++11", f"-I{STAND_IN}", f"-I{tmp_path}", f'-DMOE_MC2_ACLNN_INNER_HEADER="{name}"',
                     str(WRAPPER)], [*wrapper_inputs(), tmp_path / name])


def test_wrapper_compiles_against_the_generated_inner_header(opdef, tmp_path):
    rc, err = _compile_with_generated(tmp_path, opbuild_params(opdef))
    assert rc == 0, err


def test_a_generated_inner_header_that_differs_fails_the_build(opdef, tmp_path):
    """Negative control: an OpDef with two attributes of different C types swapped (act_type and
    transpose_weight), and one without output_y3_flag, generate headers the wrapper refuses."""
    params = opbuild_params(opdef)
    names = [n for _, n in params]
    i, j = names.index("actTypeOptional"), names.index("transposeWeightOptional")
    swapped = list(params)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    rc, err = _compile_with_generated(tmp_path, swapped)
    assert rc != 0 and "takes other arguments than op_host/op_api/aclnn_alltoall_allgather_bmm_inner.h" in err
    dropped = [p for p in params if p[1] != "outputY3FlagOptional"]
    rc, err = _compile_with_generated(tmp_path, dropped)
    assert rc != 0 and "the OpDef and the wrapper disagree" in err


# ---- 3. declarations ----------------------------------------------------------------------------

# CANN's published aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize (ops-transformer
# mc2/allto_all_all_gather_batch_mat_mul/docs/aclnnAlltoAllAllGatherBatchMatMul.md, op_host/op_api/*.h)
CANN_PUBLIC = [("const aclTensor *", "x"), ("const aclTensor *", "weight"), ("const aclTensor *", "biasOptional"),
               ("const char *", "groupEp"), ("const char *", "groupTp"), ("int64_t", "epWorldSize"),
               ("int64_t", "tpWorldSize"), ("int64_t", "xShardType"), ("int64_t", "actType"),
               ("aclTensor *", "y1Out"), ("aclTensor *", "y2OutOptional"), ("aclTensor *", "y3OutOptional"),
               ("uint64_t *", "workspaceSize"), ("aclOpExecutor **", "executor")]
CANN_PUBLIC_RUN = [("void *", "workspace"), ("uint64_t", "workspaceSize"), ("aclOpExecutor *", "executor"),
                   ("aclrtStream", "stream")]


def declared_params(text: str, function: str) -> list:
    """(type, name) of `function`'s parameters as declared in a C header (types normalised)."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
    m = re.search(rf"\b{function}\s*\((.*?)\)\s*;", text, re.S)
    assert m, f"{function} is not declared"
    out = []
    for param in m.group(1).split(","):
        p = re.match(r"\s*(.*?)(\w+)\s*$", " ".join(param.split()))
        typ = re.sub(r"\s*\*", " *", p.group(1).strip()).replace("* *", "**")
        out.append((typ, p.group(2)))
    return out


def test_public_header_is_cann_published_signature():
    text = PUBLIC_H.read_text()
    assert declared_params(text, FWD + "GetWorkspaceSize") == CANN_PUBLIC
    assert declared_params(text, FWD) == CANN_PUBLIC_RUN


def test_public_header_is_the_opdef_without_the_derived_attributes(opdef):
    """The OpDef's inputs, attributes and outputs in order, less what the wrapper derives."""
    public_kind = {"str": "const char *", "int": "int64_t", "bool": "bool"}
    want = [("const aclTensor *", None)] * len(opdef["inputs"])
    want += [(public_kind[kind], None) for n, kind, _, _ in opdef["attrs"] if n not in npu.DERIVED_ATTRS]
    want += [("aclTensor *", None)] * len(opdef["outputs"])
    got = declared_params(PUBLIC_H.read_text(), FWD + "GetWorkspaceSize")[:-2]
    assert [t for t, _ in got] == [t for t, _ in want]
    assert set(npu.DERIVED_ATTRS) == {"transpose_weight", "output_y2_flag", "output_y3_flag"} <= \
        {a[0] for a in opdef["attrs"]}


def test_the_declaration_check_can_fail():
    """Negative control: the parser sees a header with two parameters swapped."""
    text = PUBLIC_H.read_text().replace("int64_t xShardType, int64_t actType", "int64_t actType, int64_t xShardType")
    assert text != PUBLIC_H.read_text()
    assert declared_params(text, FWD + "GetWorkspaceSize") != CANN_PUBLIC


def test_inner_declaration_is_what_opbuild_makes_of_the_opdef(opdef, tmp_path):
    types = ", ".join(t for t, _ in opbuild_params(opdef))
    body = (f'#include "{INNER_H.name}"\n#include <type_traits>\n'
            f"static_assert(std::is_same<moe_mc2_opapi::InnerGetWorkspaceSizeFn, aclnnStatus (*)({types})>::value,"
            ' "inner");\n'
            f"static_assert(std::is_same<decltype(&::{INNER}GetWorkspaceSize),"
            " moe_mc2_opapi::InnerGetWorkspaceSizeFn>::value, \"decl\");\n")
    src = tmp_path / "inner_check.cpp"
    src.write_text(body)
    rc, err = _compile(["-std=c++11", f"-I{STAND_IN}", f"-I{API_DIR}", str(src)], [src, INNER_H])
    assert rc == 0, err
    swapped = body.replace("int64_t, int64_t, bool", "bool, int64_t, int64_t", 1)  # act_type <-> transpose_weight
    assert swapped != body
    src.write_text(swapped)
    rc, _ = _compile(["-std=c++11", f"-I{STAND_IN}", f"-I{API_DIR}", str(src)], [src, INNER_H])
    assert rc != 0


def _ops_transformer_text(path: str) -> str:
    source = os.environ.get("MOE_MC2_OPS_TRANSFORMER")
    if not source:
        pytest.skip("MOE_MC2_OPS_TRANSFORMER is not set (a clone or git dir of hicann/ops-transformer)")
    if os.path.isfile(os.path.join(source, path)):
        return Path(source, path).read_text()
    return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


OP_API = "mc2/allto_all_all_gather_batch_mat_mul/op_host/op_api/aclnn_all_to_all_all_gather_batch_matmul"


def test_against_cann_published_header_and_its_inner_declaration(tmp_path):
    """CANN's header declares the same functions (the compiler accepts both declarations in one
    unit only if they are identical); CANN's wrapper declares its inner function with the same
    argument list as ours (pointer constness aside)."""
    header = _ops_transformer_text(OP_API + ".h")
    source = _ops_transformer_text(OP_API + ".cpp")
    decls = [re.search(rf"ACLNN_API\s+aclnnStatus\s+{name}\s*\(.*?\);", header, re.S).group(0)
             for name in (FWD + "GetWorkspaceSize", FWD)]
    inner = re.search(rf"extern\s+aclnnStatus\s+{INNER}GetWorkspaceSize\s*\((.*?)\);", source, re.S).group(1)
    body = (f'#include "{PUBLIC_H.name}"\n#include "{INNER_H.name}"\n#include <type_traits>\n#define ACLNN_API\n'
            'extern "C" {\n' + "\n".join(decls) + "\n}\n"
            f"aclnnStatus cann_inner({inner});\n"
            "template <class T> struct Abi { using type = T; };\n"
            "template <class T> struct Abi<const T *> { using type = T *; };\n"
            "template <class... A> struct L {};\n"
            "template <class F> struct Of;\n"
            "template <class R, class... A> struct Of<R (*)(A...)> { using type = L<R, typename Abi<A>::type...>; };\n"
            "static_assert(std::is_same<Of<decltype(&cann_inner)>::type,"
            " Of<moe_mc2_opapi::InnerGetWorkspaceSizeFn>::type>::value, \"inner\");\n")
    src = tmp_path / "cann_check.cpp"
    src.write_text(body)
    rc, err = _compile(["-std=c++11", f"-I{STAND_IN}", f"-I{API_DIR}", str(src)], [src, PUBLIC_H, INNER_H])
    assert rc == 0, err
