"""The Ascend C kernel on the CPU: one call of `op_kernel/` in the project's model of the Ascend C API.

`kernel_sim/` (C++) compiles the real kernel sources, unchanged, against the model's headers and runs
them for every rank of a simulated ep x tp world (cube and vector cores as threads, HCCL collectives
across ranks); the host side of the call is the portable core of the CANN op (rules, shapes, tiling).
This module builds that library on demand, feeds it inputs made with torch, compares y1 / y2 / y3 with
`moe_mc2.reference` and is the `python -m moe_mc2 kernel-sim` command. What the model checks and what
it cannot: docs/kernel_model.md.

Tolerance (derived from the dtype, not tuned), per element of y1 and y3 against the float64 reference:

    |out - ref| <= 0.5 * ulp_T(|ref| + d) + d,    d = L * (K + 1) * 2^-24 * S + A

with ulp_T the unit in the last place of the output dtype (fp16: 2^(e-10), bf16: 2^(e-7), e = the
binade, subnormals included): one correct rounding of the fp32 result. d bounds the fp32 arithmetic
before it: K = H multiply-adds plus the bias add, each rounded once in fp32 (unit roundoff 2^-24,
products of fp16/bf16 values are exact in fp32), on the scale S = |y2| @ |w| + |bias|; L = 1.2 bounds
the slope of every activation (GELU-tanh 1.13, SiLU 1.10, FastGELU 1.11, ReLU 1) and is 1 for y3 and
act None; A = 2^-16 * |y3| for the fp32 activation itself (about ten fp32 operations, exp included;
0 for y3 and act None). y2 is data movement and must be bit-exact.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from . import reference
from .contract import activations
from .contract.problem import add_problem_args

ROOT = Path(__file__).resolve().parents[2]
UB_BYTES_A2A3 = 192 * 1024          # Unified Buffer per vector core, Atlas A2 / A3
SYS_WORKSPACE_BYTES = 64 * 1024     # the model's stand-in for GetLibApiWorkSpaceSize()
U32 = 2.0 ** -24                    # fp32 unit roundoff
ACT_SLOPE = 1.2                     # max |act'| over the five activations
ACT_FP32 = 2.0 ** -16               # fp32 activation error, relative to |y3|
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
BIAS_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
_CODE = {torch.float16: 0, torch.bfloat16: 1, torch.float32: 2}


# ------------------------------------------------------------------------------------ the library

class _Call(ctypes.Structure):
    """kernel_sim/include/kernel_sim/sim_abi.h: AagSimCall (every field 64 bits)."""
    _fields_ = [(n, ctypes.c_int64) for n in (
        "ep", "tp", "shard", "act", "E", "C", "H", "M", "dtype", "bias", "biasDtype", "transposeWeight",
        "y2Flag", "y3Flag", "aicPerRank", "ubBytes", "sysWorkspaceBytes", "eTile", "cTile", "unitM", "unitN",
        "epiRows", "nTileEnds")] + [("tileEnds", ctypes.c_int64 * 16), ("legacyETile", ctypes.c_int64),
        ("legacyCTile", ctypes.c_int64), ("ownAhead", ctypes.c_int64),
        ("peerAhead", ctypes.c_int64),
        ("collectiveLatencyUs", ctypes.c_double), ("serialGroups", ctypes.c_int64)] + [
        ("seed", ctypes.c_uint64), ("maxDelay", ctypes.c_int64), ("countOnly", ctypes.c_int64),
        ("raceCheck", ctypes.c_int64), ("watchdogSeconds", ctypes.c_double), ("l2Bytes", ctypes.c_int64),
        ("l2LineBytes", ctypes.c_int64), ("kernel", ctypes.c_char_p),
        ("x", ctypes.POINTER(ctypes.c_void_p)), ("weight", ctypes.POINTER(ctypes.c_void_p)),
        ("biasData", ctypes.POINTER(ctypes.c_void_p)), ("y1", ctypes.POINTER(ctypes.c_void_p)),
        ("y2", ctypes.POINTER(ctypes.c_void_p)), ("y3", ctypes.POINTER(ctypes.c_void_p))]


_LIB = None
_LIB_LOCK = threading.Lock()


def build_dir() -> Path:
    return Path(os.environ.get("MOE_MC2_BUILD_DIR", ROOT / "build"))


def library_path() -> Path:
    env = os.environ.get("MOE_MC2_KERNEL_SIM_LIB")
    return Path(env) if env else build_dir() / "kernel_sim" / "libaag_kernel_sim.so"


def ensure_built(quiet: bool = True) -> Path:
    """Configure (first time) and build the model's library with CMake; returns its path."""
    if os.environ.get("MOE_MC2_KERNEL_SIM_LIB"):
        return library_path()
    if not (ROOT / "kernel_sim" / "CMakeLists.txt").exists():
        raise RuntimeError(f"kernel-sim needs a source checkout of moe_mc2 (no kernel_sim/ under {ROOT})")
    bdir = build_dir()
    out = subprocess.DEVNULL if quiet else None
    if not (bdir / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
                        "-DMOE_MC2_BUILD_TESTS=OFF"], check=True, stdout=out)
    jobs = os.environ.get("MOE_MC2_JOBS", "2")
    res = subprocess.run(["cmake", "--build", str(bdir), "--target", "aag_kernel_sim", "-j", jobs],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise RuntimeError("building the kernel model failed:\n" + res.stdout[-6000:])
    return library_path()


def load():
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            path = ensure_built()
            lib = ctypes.CDLL(str(path))
            for fn in (lib.aag_sim_run, lib.aag_sim_plan, lib.aag_sim_cost):
                fn.argtypes = [ctypes.POINTER(_Call), ctypes.c_char_p, ctypes.c_size_t]
                fn.restype = ctypes.c_int
            _LIB = lib
        return _LIB


# -------------------------------------------------------------------------------------- the call

@dataclass
class SimConfig:
    ep: int = 2
    tp: int = 2
    E: int = 4
    C: int = 6
    H: int = 40
    M: int = 76
    dtype: str = "fp16"
    act: int = 0
    shard_type: int = 1
    bias: str = "none"                  # none / 2d / 3d
    bias_dtype: Optional[str] = None    # default: fp16 for fp16 x, fp32 for bf16 x
    transpose_weight: bool = False
    y2: bool = False
    y3: bool = False
    seed: int = 0
    aic: int = 2                        # cube cores per rank (vector cores: 2x)
    ub_bytes: int = UB_BYTES_A2A3
    count_only: bool = False
    race_check: bool = True
    max_delay: int = 48
    tiles: Optional[Tuple[int, int]] = None   # (eTile, cTile): uniform tiles; None: the planner's
    tile_ends: Optional[Tuple[int, ...]] = None  # explicit tile boundaries (end cells, the last = El * Rx)
    unit: Optional[Tuple[int, int]] = None    # (unitM, unitN): force the matmul unit
    epi_rows: int = 0                   # force fewer epilogue rows per UB chunk
    own_ahead: Optional[int] = None     # shard 1: force the own-rows lookahead in tiles
    peer_ahead: Optional[int] = None    # shard 1: force the peer rows' lookahead in tiles (-1: with the far rows)
    kernel: str = "aag"
    watchdog: float = 20.0
    l2_bytes: int = 0                   # L2 per rank for the HBM counters; 0: the cost model's constant

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    @property
    def bias_torch_dtype(self):
        if self.bias_dtype:
            return BIAS_DTYPES[self.bias_dtype]
        return torch.float16 if self.dtype == "fp16" else torch.float32

    def describe(self) -> str:
        flags = [f"bias={self.bias}" + (f"({self.bias_dtype})" if self.bias_dtype else "")]
        flags += [n for n, on in (("transpose_weight", self.transpose_weight), ("y2", self.y2), ("y3", self.y3)) if on]
        return (f"ep={self.ep} tp={self.tp} E={self.E} C={self.C} H={self.H} M={self.M} {self.dtype} "
                f"act={activations.display_name(self.act)} shard={self.shard_type} " + " ".join(flags) +
                f" seed={self.seed}")


def _struct(cfg: SimConfig, arrays=None) -> _Call:
    c = _Call()
    c.ep, c.tp, c.shard, c.act = cfg.ep, cfg.tp, cfg.shard_type, int(cfg.act)
    c.E, c.C, c.H, c.M = cfg.E, cfg.C, cfg.H, cfg.M
    c.dtype = _CODE[cfg.torch_dtype]
    c.bias = {"none": 0, "2d": 2, "3d": 3}[cfg.bias]
    c.biasDtype = _CODE[cfg.bias_torch_dtype]
    c.transposeWeight, c.y2Flag, c.y3Flag = int(cfg.transpose_weight), int(cfg.y2), int(cfg.y3)
    c.aicPerRank, c.ubBytes, c.sysWorkspaceBytes = cfg.aic, cfg.ub_bytes, SYS_WORKSPACE_BYTES
    c.eTile, c.cTile = cfg.tiles if cfg.tiles else (0, 0)
    c.unitM, c.unitN = cfg.unit if cfg.unit else (0, 0)
    c.epiRows = cfg.epi_rows
    c.ownAhead = 0 if cfg.own_ahead is None else int(cfg.own_ahead) + 1
    c.peerAhead = 0 if cfg.peer_ahead is None else max(int(cfg.peer_ahead), -1) + 2
    ends = tuple(cfg.tile_ends or ())
    if len(ends) > 16:
        raise ValueError("at most 16 tiles")
    c.nTileEnds = len(ends)
    for k, e in enumerate(ends):
        c.tileEnds[k] = int(e)
    c.seed, c.maxDelay = cfg.seed, cfg.max_delay
    c.countOnly, c.raceCheck, c.watchdogSeconds = int(cfg.count_only), int(cfg.race_check), cfg.watchdog
    c.l2Bytes, c.l2LineBytes = cfg.l2_bytes, 0
    c.kernel = cfg.kernel.encode()
    if arrays:
        for name, arr in arrays.items():
            setattr(c, name, arr)
    return c


def plan(cfg: SimConfig) -> dict:
    """The host side only: rules, shapes, tiling (as the CANN op computes them)."""
    buf = ctypes.create_string_buffer(1 << 16)
    load().aag_sim_plan(ctypes.byref(_struct(cfg)), buf, len(buf))
    return json.loads(buf.value.decode())


def make_inputs(cfg: SimConfig):
    """Every world rank's (x, weight as stored, bias) from the seed; r = t * ep + i."""
    g = torch.Generator().manual_seed(cfg.seed)
    dt, world = cfg.torch_dtype, cfg.ep * cfg.tp
    El, N = cfg.E // cfg.ep, cfg.M // cfg.tp
    x_shape = (cfg.E, cfg.C // cfg.tp, cfg.H) if cfg.shard_type == 1 else (cfg.E, cfg.C, cfg.H // cfg.tp)
    w_shape = (El, N, cfg.H) if cfg.transpose_weight else (El, cfg.H, N)
    xs = [(torch.rand(x_shape, generator=g, dtype=torch.float64) * 2 - 1).to(dt) for _ in range(world)]
    scale = 2.0 / math.sqrt(cfg.H)
    ws = [((torch.rand(w_shape, generator=g, dtype=torch.float64) * 2 - 1) * scale).to(dt) for _ in range(world)]
    bs = None
    if cfg.bias != "none":
        b_shape = (El, N) if cfg.bias == "2d" else (El, 1, N)
        bs = [(torch.rand(b_shape, generator=g, dtype=torch.float64) - 0.5).to(cfg.bias_torch_dtype)
              for _ in range(world)]
    return xs, ws, bs


@dataclass
class OutputCheck:
    name: str
    produced: bool
    passed: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    tolerance_use: float = 0.0    # max |err| / allowed (<= 1 passes); y2: 0 when bit-exact
    exact: Optional[bool] = None
    detail: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        if not self.produced:
            return f"{self.name}: not produced (empty)  {verdict}"
        if self.exact is not None:
            return f"{self.name}: {'bit-exact' if self.exact else 'differs: ' + self.detail}  {verdict}"
        return (f"{self.name}: max abs {self.max_abs:.3e}  max rel {self.max_rel:.3e}  "
                f"tolerance use {self.tolerance_use:.3f}  {verdict}" + (f"  ({self.detail})" if self.detail else ""))


@dataclass
class SimResult:
    cfg: SimConfig
    report: dict
    outputs: List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    checks: List[OutputCheck] = field(default_factory=list)
    invalid: Optional[dict] = None

    @property
    def model_ok(self) -> bool:
        return self.invalid is None and bool(self.report.get("ok"))

    @property
    def passed(self) -> bool:
        return self.model_ok and all(c.passed for c in self.checks)

    @property
    def errors(self) -> List[str]:
        if self.invalid is not None:
            return [f"invalid call: [{self.invalid.get('rule')}] {self.invalid.get('message')}"]
        return list(self.report.get("errors", []))


def ulp(v: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Unit in the last place of `dtype` at |v| (float64), subnormals included."""
    mant, emin = {torch.float16: (10, -14), torch.bfloat16: (7, -126)}[dtype]
    a = v.abs().clamp_min(2.0 ** emin)
    e = torch.floor(torch.log2(a)).clamp_min(emin)
    return torch.exp2(e - mant)


def allowed_error(ref: torch.Tensor, scale: torch.Tensor, K: int, dtype: torch.dtype, *, act: bool,
                  pre_activation: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The stated tolerance (module docstring) for each element of a y1 / y3 against the float64 ref."""
    slope = ACT_SLOPE if act else 1.0
    d = slope * (K + 1) * U32 * scale.double()
    if act and pre_activation is not None:
        d = d + ACT_FP32 * pre_activation.double().abs()
    return 0.5 * ulp(ref.double().abs() + d, dtype) + d


def _compare(name: str, out: torch.Tensor, ref: torch.Tensor, allowed: torch.Tensor, dtype) -> OutputCheck:
    err = (out.double() - ref.double()).abs()
    if torch.isnan(out.double()).any():
        bad = int(torch.isnan(out.double()).sum())
        return OutputCheck(name, True, False, float("nan"), float("nan"), float("inf"),
                           detail=f"{bad} NaN element(s): never written, or written from unwritten memory")
    rel = err / ref.double().abs().clamp_min(float(ulp(torch.zeros(1, dtype=torch.float64), dtype)))
    use = float((err / allowed).max()) if err.numel() else 0.0
    check = OutputCheck(name, True, use <= 1.0, float(err.max()) if err.numel() else 0.0,
                        float(rel.max()) if rel.numel() else 0.0, use)
    if not check.passed:
        k = int((err / allowed).flatten().argmax())
        idx = tuple(int(v) for v in torch.unravel_index(torch.tensor(k), out.shape))
        check.detail = (f"worst at {idx}: got {float(out.flatten()[k]):.6g}, reference {float(ref.flatten()[k]):.6g}, "
                        f"allowed {float(allowed.flatten()[k]):.3g}")
    return check


def compare(cfg: SimConfig, inputs, outputs, *, golden=None) -> List[OutputCheck]:
    """y1 / y2 / y3 of every rank against the reference (or, with `golden`, against those rounded values
    with half an ulp more allowed for the golden's own rounding)."""
    xs, ws_stored, bs = inputs
    ws = [w.transpose(1, 2) if cfg.transpose_weight else w for w in ws_stored]
    act = int(cfg.act)
    refs = reference.forward(xs, ws, bs, ep=cfg.ep, tp=cfg.tp, shard_type=cfg.shard_type, act_type=act,
                             need_allgather_out=cfg.y2, need_activation_feature=cfg.y3, rounded=False)
    dt = cfg.torch_dtype
    worst = {n: None for n in ("y1", "y2", "y3")}

    def keep(c: OutputCheck, rank: int):
        cur = worst[c.name]
        c.detail = (f"rank {rank}: " + c.detail) if c.detail else c.detail
        if cur is None or (not c.passed and cur.passed) or (c.passed == cur.passed and c.tolerance_use > cur.tolerance_use):
            worst[c.name] = c

    for r, ((y1, y2, y3), (r1, r2, r3)) in enumerate(zip(outputs, refs)):
        scale = reference.magnitude(xs, ws, bs, ep=cfg.ep, tp=cfg.tp, shard_type=cfg.shard_type, rank=r)
        pre = reference.forward(xs, ws, bs, ep=cfg.ep, tp=cfg.tp, shard_type=cfg.shard_type, act_type=0,
                                ranks=[r], rounded=False)[0][0] if act else None
        a1 = allowed_error(r1, scale, cfg.H, dt, act=act != 0, pre_activation=pre)
        t1 = r1
        if golden is not None:
            t1 = golden[r][0].double()
            a1 = a1 + 0.5 * ulp(t1.abs(), dt)
        keep(_compare("y1", y1, t1, a1, dt), r)
        if cfg.y2:
            want = golden[r][1] if golden is not None else r2
            exact = bool(torch.equal(y2.double(), want.double()))
            keep(OutputCheck("y2", True, exact, exact=exact,
                             detail="" if exact else f"{int((y2.double() != want.double()).sum())} element(s) differ"), r)
        else:
            keep(OutputCheck("y2", False, y2 is None or y2.numel() == 0), r)
        if cfg.y3 and act != 0:
            a3 = allowed_error(r3, scale, cfg.H, dt, act=False)
            t3 = r3
            if golden is not None:
                t3 = golden[r][2].double()
                a3 = a3 + 0.5 * ulp(t3.abs(), dt)
            keep(_compare("y3", y3, t3, a3, dt), r)
        else:
            keep(OutputCheck("y3", False, y3 is None or y3.numel() == 0), r)
    return [worst[n] for n in ("y1", "y2", "y3")]


def run(cfg: SimConfig, inputs=None, *, check: bool = True, golden=None) -> SimResult:
    """One call of the kernel in the model on every rank; compares with the reference unless
    count_only (which moves no data) or check=False."""
    lib = load()
    host = plan(cfg)
    if not host.get("valid"):
        return SimResult(cfg, {}, invalid=host)
    world = cfg.ep * cfg.tp
    shapes = host["tiling"]["shapes"]
    ptrs = lambda ts: (ctypes.c_void_p * world)(*[(t.data_ptr() if t is not None else None) for t in ts])  # noqa: E731
    outputs = []
    keep_alive = []
    if cfg.count_only:
        none = [None] * world
        arrays = {k: ptrs(none) for k in ("x", "weight", "biasData", "y1", "y2", "y3")}
    else:
        if inputs is None:
            inputs = make_inputs(cfg)
        xs, ws, bs = inputs
        xs = [x.contiguous() for x in xs]
        ws = [w.contiguous() for w in ws]
        bs = [b.contiguous() for b in bs] if bs is not None else None
        inputs = (xs, ws, bs)
        dt = cfg.torch_dtype
        for _ in range(world):
            y1 = torch.empty(shapes["y1"], dtype=dt)
            y2 = torch.empty(shapes["y2"], dtype=dt)
            y3 = torch.empty(shapes["y3"], dtype=dt)
            outputs.append((y1, y2, y3))
        arrays = {"x": ptrs(xs), "weight": ptrs(ws), "biasData": ptrs(bs if bs is not None else [None] * world),
                  "y1": ptrs([o[0] for o in outputs]),
                  "y2": ptrs([o[1] if o[1].numel() else None for o in outputs]),
                  "y3": ptrs([o[2] if o[2].numel() else None for o in outputs])}
        keep_alive = [xs, ws, bs, outputs]
    call = _struct(cfg, arrays)
    buf = ctypes.create_string_buffer(1 << 20)
    lib.aag_sim_run(ctypes.byref(call), buf, len(buf))
    del keep_alive
    report = json.loads(buf.value.decode())
    if not report.get("valid", True):
        return SimResult(cfg, report, invalid=report)
    res = SimResult(cfg, report, outputs)
    if check and not cfg.count_only and report.get("ok"):
        res.checks = compare(cfg, inputs, outputs, golden=golden)
    return res


def tolerance_text(cfg: SimConfig) -> str:
    t = "fp16" if cfg.dtype == "fp16" else "bf16"
    act = int(cfg.act) != 0
    d = (f"{ACT_SLOPE} (K+1) 2^-24 S + 2^-16 |y3|" if act else "(K+1) 2^-24 S")
    return (f"|out - ref| <= 0.5 ulp_{t}(|ref| + d) + d, d = {d}, K = H = {cfg.H}, S = |y2|@|w| + |bias|"
            f"{'; y3: d = (K+1) 2^-24 S' if cfg.y3 and act else ''}; y2 bit-exact")


# ---------------------------------------------------------------------------------------- msopst

def msopst_cases() -> List[dict]:
    return json.load(open(ROOT / "tests" / "msopst" / "AlltoAllAllGatherBatchMatMul_case.json", encoding="utf-8"))


def _expect_module():
    import importlib.util
    path = ROOT / "tests" / "msopst" / "aag_bmm_expect.py"
    spec = importlib.util.spec_from_file_location("aag_bmm_expect", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def msopst_config(case: dict, **over) -> Tuple[SimConfig, tuple]:
    """The model call and the symmetric-world inputs of one msopst case (tests/msopst)."""
    expect = _expect_module()
    at = {a["name"]: a["value"] for a in case["attr"]}
    ins = expect.case_inputs(case)
    x, w, b = ins["x"], ins["weight"], ins.get("bias")
    ep, tp, shard = int(at["ep_world_size"]), int(at["tp_world_size"]), int(at["x_shard_type"])
    tw = bool(at["transpose_weight"])
    N = w.shape[1] if tw else w.shape[2]
    cfg = SimConfig(ep=ep, tp=tp, E=x.shape[0], C=x.shape[1] * tp if shard == 1 else x.shape[1],
                    H=x.shape[2] if shard == 1 else x.shape[2] * tp, M=N * tp,
                    dtype="fp16" if x.dtype == torch.float16 else "bf16", act=int(at["act_type"]), shard_type=shard,
                    bias="none" if b is None else ("2d" if b.dim() == 2 else "3d"),
                    bias_dtype=None if b is None else {torch.float16: "fp16", torch.bfloat16: "bf16",
                                                        torch.float32: "fp32"}[b.dtype],
                    transpose_weight=tw, y2=bool(at["output_y2_flag"]), y3=bool(at["output_y3_flag"]))
    cfg = replace(cfg, **over)
    world = ep * tp
    inputs = ([x] * world, [w] * world, None if b is None else [b] * world)
    return cfg, inputs


def run_msopst_case(case: dict, **over) -> SimResult:
    """The case through the model on every rank, against the case's expected-data function (golden)."""
    expect = _expect_module()
    cfg, inputs = msopst_config(case, **over)
    x, w, b = inputs[0][0], inputs[1][0], (inputs[2][0] if inputs[2] is not None else None)
    golden = []
    for r in range(cfg.ep * cfg.tp):
        outs = expect.golden(x, w, b, ep=cfg.ep, tp=cfg.tp, shard_type=cfg.shard_type, act_type=int(cfg.act),
                             transpose_weight=cfg.transpose_weight, y2_flag=cfg.y2, y3_flag=cfg.y3, rank=r)
        golden.append(outs)
    return run(cfg, inputs, golden=golden)


# ------------------------------------------------------------------------------------------- CLI

def _parse(argv):
    import argparse

    p = argparse.ArgumentParser(prog="python -m moe_mc2 kernel-sim",
                                description="Run op_kernel/ in the CPU model of the Ascend C API on a simulated "
                                            "ep x tp world and compare y1/y2/y3 with the reference.")
    add_problem_args(p, ep=2, tp=2, E=4, C=6, H=40, M=76, dtypes=DTYPES, dtype="fp16", act="None")
    p.add_argument("--bias", choices=("none", "2d", "3d"), default="none")
    p.add_argument("--bias-dtype", choices=sorted(BIAS_DTYPES), default=None,
                   help="default: fp16 for fp16, fp32 for bf16 (bf16 for the bf16-bias column)")
    p.add_argument("--transpose-weight", action="store_true")
    p.add_argument("--y2", action="store_true", help="need_allgather_out")
    p.add_argument("--y3", action="store_true", help="need_activation_feature")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aic", type=int, default=2, help="cube cores per simulated rank (vector cores: twice)")
    p.add_argument("--tiles", type=int, nargs=2, metavar=("E_TILE", "C_TILE"), default=None,
                   help="force the remote tile shape instead of the planner's")
    p.add_argument("--tile-ends", type=int, nargs="+", default=None, metavar="CELL",
                   help="force the tile boundaries (exclusive end cells of E/ep x C/tp, resp. C, cells)")
    p.add_argument("--unit", type=int, nargs=2, metavar=("M", "N"), default=None,
                   help="force the matmul unit (rows x columns, rounded up to 16)")
    p.add_argument("--epi-rows", type=int, default=0, help="force fewer epilogue rows per UB chunk")
    p.add_argument("--own-ahead", type=int, default=None,
                   help="shard 1: compute the own rows this many tiles ahead (default: the planner's)")
    p.add_argument("--peer-ahead", type=int, default=None,
                   help="shard 1: compute the peer rows (those the AlltoAllV received) this many tiles ahead, "
                        "from its receive buffer; -1: after the AllGather, with the far rows (default: the planner's)")
    p.add_argument("--count-only", action="store_true",
                   help="skip the arithmetic and the data: only the checks and the counters (large shapes)")
    p.add_argument("--kernel", default="aag", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print the model's report as JSON")
    return p.parse_args(argv)


COMM_REGIONS = ("ws.a2a", "ws.ag", "ws.local_ag")   # workspace regions the collectives fill: data (A)


def count_summary(report: dict, rank: int = 0) -> dict:
    """One rank's counters in the cost model's vocabulary (docs/kernel_model.md, "Counting"):
    gm_*: bytes the cores' API calls move (GM level); hbm_*: what reaches HBM through the rank's L2
    model (misses, write-backs, the flush at the end). "data" is every tensor plus the collectives'
    receive regions (the gathered A); "workspace" is every other workspace region (scratch rings,
    the system workspace). comm_*: bytes the collectives read and wrote in this rank's memory."""
    r = report["ranks"][rank]
    out = dict(gm_data=0, gm_workspace=0, hbm_data_read=0, hbm_data_write=0, hbm_workspace=0,
               comm_read=0, comm_write=0)
    for name, c in r["bytes"].items():
        scratch = name.startswith("ws.") and name not in COMM_REGIONS or name == "workspace"
        gm = c["kernel_read"] + c["kernel_write"]
        hbm = c.get("hbm_read", 0) + c.get("hbm_write", 0)
        if scratch:
            out["gm_workspace"] += gm
            out["hbm_workspace"] += hbm
        else:
            out["gm_data"] += gm
            out["hbm_data_read"] += c.get("hbm_read", 0)
            out["hbm_data_write"] += c.get("hbm_write", 0)
        out["comm_read"] += c["comm_read"]
        out["comm_write"] += c["comm_write"]
    out["hbm_data"] = out["hbm_data_read"] + out["hbm_data_write"]
    out["cube_flops"] = r["cube_flops"]
    out["matmuls"] = r["matmuls"]
    out["sync_all"] = r["sync_all"]
    out["hccl_waits"] = r["hccl_waits"]
    out["vector_elements"] = r["vector_elements"]
    out["collectives"] = {k: v["calls"] for k, v in r["collectives"].items()}
    out["l2_bytes"] = r.get("l2_bytes", 0)
    return out


def _counters_line(report: dict) -> str:
    r0 = report["ranks"][0]
    b = r0["bytes"]
    gm_r = sum(v["kernel_read"] for v in b.values())
    gm_w = sum(v["kernel_write"] for v in b.values())
    coll = ", ".join(f"{k} x{v['calls']}" for k, v in sorted(r0["collectives"].items()))
    return (f"rank 0: GM read {gm_r} B, written {gm_w} B by the cores; cube {r0['cube_flops']} FLOP in "
            f"{r0['matmuls']} matmuls; {r0['sync_all']} SyncAll; collectives {coll or 'none'}; "
            f"UB high water {r0['ub_high_water']} B")


def main(argv=None) -> int:
    a = _parse(sys.argv[1:] if argv is None else argv)
    try:
        act = activations.parse_act_type(a.act)
    except Exception as exc:  # the contract's own error text
        print(f"kernel-sim: {exc}", file=sys.stderr)
        return 2
    cfg = SimConfig(ep=a.ep, tp=a.tp, E=a.E, C=a.C, H=a.H, M=a.M, dtype=a.dtype, act=act, shard_type=a.shard_type,
                    bias=a.bias, bias_dtype=a.bias_dtype, transpose_weight=a.transpose_weight, y2=a.y2, y3=a.y3,
                    seed=a.seed, aic=a.aic, tiles=tuple(a.tiles) if a.tiles else None, count_only=a.count_only,
                    tile_ends=tuple(a.tile_ends) if a.tile_ends else None, unit=tuple(a.unit) if a.unit else None,
                    epi_rows=a.epi_rows, own_ahead=a.own_ahead, peer_ahead=a.peer_ahead,
                    kernel=a.kernel)
    print(f"kernel-sim: {cfg.describe()}", flush=True)
    res = run(cfg)
    if res.invalid is not None:
        print(f"invalid call: [{res.invalid.get('rule')}] {res.invalid.get('message')}")
        print("FAIL")
        return 1
    rep = res.report
    t = rep["tiling"]
    print(f"host: tiling key {t['key']}, {t['description']}, block dim {t['block_dim']}, workspace "
          f"{t['workspace_bytes']} B, UB {t['ub_used_bytes']} of {t['ub_bytes']} B in buffers; predicted makespan "
          f"{t['makespan_us']:.1f} us, bound {t['bound_us']:.1f} us (cost model)")
    world = cfg.ep * cfg.tp
    print(f"model: {world} ranks x ({cfg.aic} AIC + {2 * cfg.aic} AIV), "
          f"{sum(r['api_calls'] for r in rep['ranks'])} API calls, {rep['seconds']:.2f} s"
          + (" (counting mode: no arithmetic)" if cfg.count_only else ""))
    if rep.get("ranks"):
        print("counters " + _counters_line(rep))
    if a.json:
        print(json.dumps(rep, indent=1))
    if not res.model_ok:
        print("model errors:")
        for e in res.errors:
            print("  " + e.replace("\n", "\n  "))
        print("FAIL")
        return 1
    if cfg.count_only:
        print("PASS (counting mode: the checks ran, no values to compare)")
        return 0
    print("tolerance: " + tolerance_text(cfg))
    for c in res.checks:
        print(c.line())
    print("PASS" if res.passed else "FAIL")
    return 0 if res.passed else 1
