"""`python -m moe_mc2 bench`: the fused op against what a user writes today, on local CPU ranks.

One run starts ep x tp ranks (LocalWorld, gloo) and measures, after warm-up, the medians of
  comm     AllToAll over ep + AllGather over tp of the op's bytes (what the fused op must hide)
  compute  the batched matmul + fp32 epilogue (bias, activation) on already-gathered input
  unfused  all_to_all_single -> permute copy -> all_gather -> permute copy -> bmm -> bias -> activation
  fused    moe_mc2.npu_alltoall_allgather_bmm
  fused, agreement off   the same with MOE_MC2_AGREEMENT=0 (no signature exchange)
  agreement              the signature exchange alone (runtime/agreement.py): what every call pays
An iteration's time is the slowest rank's (all ranks start together after a barrier).
  speedup = unfused / fused;   overlap = (comm + compute - fused) / min(comm, compute)
  agree_pct = agreement / fused (the agreement's share of the call, %); the last three are timed
  interleaved, one call of each per iteration
(overlap 1: the shorter of comm and compute is fully hidden; 0: none; < 0: fused is slower than
doing both back to back).

Peak memory ("peak_mb") counts the bytes of tensor storage the call allocates and holds at
once, inputs excluded: a TorchDispatchMode sees every tensor an op creates inside the call, and
a weak reference per storage tells when it is freed. (For the fused op the mode runs around its
CPU kernel, runtime/forward.run: around the registered op it would only see the op's outputs.) It is measured in a separate, untimed
iteration (the mode's bookkeeping would skew timings). It does not see the communication
library's internal buffers (gloo's are the same for both variants) nor allocator caching;
torch has no CPU allocator statistics and RSS high-water marks on glibc are dominated by malloc's
arena reuse, so tensor bytes are the stable, comparable measure.

--plot FILE draws one traced fused iteration per rank: comm spans (collectives from issue to
completion, on gloo's threads) over compute spans (runtime/trace.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from .contract.problem import add_problem_args

DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
          "float32": torch.float32, "fp32": torch.float32}


@dataclass
class BenchConfig:
    ep: int = 2
    tp: int = 2
    E: int = 8
    C: int = 512
    H: int = 1024
    M: int = 2048
    dtype: str = "bfloat16"
    iters: int = 10
    warmup: int = 3
    shard_type: int = 1
    act: str = "GELU"
    bias: bool = False
    threads_per_rank: int = 0  # 0: cores / ranks (at least 1)

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]


# --- what runs on every rank ------------------------------------------------------------------

def _inputs(ctx, cfg: BenchConfig):
    from .contract.rules import bias_dtype_for

    g = torch.Generator().manual_seed(100 + ctx.rank)
    dt = cfg.torch_dtype
    El, Nt = cfg.E // cfg.ep, cfg.M // cfg.tp
    xs = (cfg.E, cfg.C // cfg.tp, cfg.H) if cfg.shard_type == 1 else (cfg.E, cfg.C, cfg.H // cfg.tp)
    x = torch.randn(xs, generator=g).to(dt)
    w = (torch.randn(El, cfg.H, Nt, generator=g) / cfg.H ** 0.5).to(dt)
    b = torch.randn(El, Nt, generator=g).to(bias_dtype_for(dt)) if cfg.bias else None
    return x, w, b


def _comm_only(ctx, cfg, x):
    """AllToAll + AllGather of the op's bytes, back to back (the fused op's communication)."""
    from .runtime import collectives

    recv = torch.empty_like(x)
    collectives.all_to_all(recv, x, ctx.ep_group, async_op=False)
    gathered = x.new_empty((cfg.tp * x.shape[0],) + tuple(x.shape[1:]))
    collectives.all_gather(gathered, recv, ctx.tp_group, async_op=False)
    return gathered


def _compute_only(cfg, y2, w, b, act, chunk_rows: int = 128):
    """bmm + fp32 epilogue on the gathered input: the fused op's arithmetic without its comm.

    One untiled bmm (the GEMM at its best efficiency), then the runtime's epilogue over chunks
    of <= chunk_rows rows per expert (cache-sized, as the pipeline's tiles are): a lower bound
    of the fused op's compute.
    """
    from .runtime.numerics import TileMath, epilogue

    tm = TileMath(y2.dtype, y2.device)
    El, rows = y2.shape[0], y2.shape[1]
    acc = tm.product(y2, tm.weight_block(w))
    y1 = torch.empty(acc.shape, dtype=y2.dtype)
    b32 = None if b is None else b.float().reshape(El, 1, -1)
    for e in range(El):
        for r0 in range(0, rows, chunk_rows):
            r1 = min(rows, r0 + chunk_rows)
            epilogue(acc[e, r0:r1], None if b32 is None else b32[e], act, y1[e, r0:r1], None)
    return y1


def unfused(ctx, cfg, x, w, b, act):
    """The sequence a user writes today with torch.distributed and torch ops."""
    import torch.distributed as dist

    from .contract import activations

    ep, tp = cfg.ep, cfg.tp
    El = cfg.E // ep
    a2a = torch.empty_like(x)
    dist.all_to_all_single(a2a, x, group=ctx.ep_group)
    local = a2a.view(ep, El, *x.shape[1:]).permute(1, 0, 2, 3).contiguous()  # (El, ep, rows, cols)
    gathered = local.new_empty((tp * El,) + tuple(local.shape[1:]))  # gloo: concatenated along dim 0
    (getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor)(gathered, local, group=ctx.tp_group)
    gathered = gathered.view((tp,) + tuple(local.shape))
    if cfg.shard_type == 1:  # (tp, El, ep, Ct, H) -> (El, ep, tp, Ct, H) -> (El, ep*C, H)
        y2 = gathered.permute(1, 2, 0, 3, 4).reshape(El, ep * cfg.C, cfg.H)
    else:  # (tp, El, ep, C, Ht) -> (El, ep, C, tp, Ht) -> (El, ep*C, H)
        y2 = gathered.permute(1, 2, 3, 0, 4).reshape(El, ep * cfg.C, cfg.H)
    y = torch.bmm(y2, w)
    if b is not None:
        y = y + b.reshape(El, 1, -1).to(y.dtype)
    return activations.apply(y, act)


def fused(ctx, cfg, x, w, b, act):
    from .ops import npu_alltoall_allgather_bmm

    return npu_alltoall_allgather_bmm(
        x, w, bias=b, group_ep=ctx.ep_group, group_ep_worldsize=cfg.ep, group_tp=ctx.tp_group,
        group_tp_worldsize=cfg.tp, shard_type=cfg.shard_type, act_type=act)[0]


def agreement_only(ctx, cfg, x, w, b, act):
    """What the agreement adds to a call: build this rank's signature, exchange it over both
    groups, decide (runtime/agreement.py) - exactly the steps of the op's kernel."""
    from .contract.names import OP_NAME
    from .runtime import agreement

    El = cfg.E // cfg.ep
    agreement.confirm(OP_NAME, agreement.signature(
        OP_NAME, ep=cfg.ep, tp=cfg.tp, shard_type=cfg.shard_type, act_type=act, x=x,
        weight_shape=(El, cfg.H, cfg.M // cfg.tp), bias=b), ctx.ep_group, ctx.tp_group)


def fused_without_agreement(ctx, cfg, x, w, b, act):
    from .runtime import agreement

    with agreement.enabled_as(False):
        return fused(ctx, cfg, x, w, b, act)


def fused_kernel(ctx, cfg, x, w, b, act):
    """The fused op's CPU kernel called directly (runtime/forward.run): for the memory count, where
    a dispatch mode must see the kernel's own allocations (it sees a custom op only as one call)."""
    from .runtime import forward

    return forward.run(x, w, b, group_ep=ctx.group_ep, ep=cfg.ep, group_tp=ctx.group_tp, tp=cfg.tp,
                       shard_type=cfg.shard_type, act_type=act, need_allgather_out=False,
                       need_activation_feature=False)[0]


class _LiveBytes(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of tensor storage created inside the mode and still alive (see module doc)."""

    def __init__(self):
        super().__init__()
        from torch.multiprocessing.reductions import StorageWeakRef

        self._ref = StorageWeakRef
        self.live: Dict[int, tuple] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = st.data_ptr()
                if key and key not in self.live:
                    self.live[key] = (self._ref(st), st.nbytes())
                    self.current += st.nbytes()
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        self.peak = max(self.peak, self.current)
        return out


def _timed(ctx, fn, iters, warmup, label, progress):
    return _timed_together(ctx, {label: fn}, iters, warmup, progress)[label]


def _timed_together(ctx, fns: dict, iters, warmup, progress) -> dict:
    """Each iteration runs every function once, in turn (so slow drifts of a shared machine hit
    them alike); per function the slowest rank's time of each iteration after warm-up."""
    import torch.distributed as dist

    times = {label: [] for label in fns}
    for k in range(warmup + iters):
        for label, fn in fns.items():
            dist.barrier()
            t0 = time.perf_counter()
            fn()
            dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(dt, op=dist.ReduceOp.MAX)
            if k >= warmup:
                times[label].append(dt.item())
            if progress and ctx.rank == 0:
                phase = "warm-up" if k < warmup else f"{k - warmup + 1}/{iters}"
                print(f"[bench] {label:<13} {phase:<8} {dt.item() * 1e3:8.2f} ms", file=sys.stderr, flush=True)
    return times


def _peak_bytes(fn) -> int:
    import gc

    gc.collect()
    with _LiveBytes() as mode:
        out = fn()
        del out
    return mode.peak


def bench_rank(ctx, cfg: BenchConfig, progress: bool = True, trace_fused: bool = False):
    """Every measurement on this rank; returns medians (s), peaks (bytes) and optional spans."""
    from .contract.activations import parse_act_type
    from .runtime import trace

    act = parse_act_type(cfg.act)
    x, w, b = _inputs(ctx, cfg)
    y2 = _comm_only(ctx, cfg, x)  # the gathered bytes; only their shape matters for timing compute
    El = cfg.E // cfg.ep
    y2 = y2.reshape(El, cfg.ep * cfg.C, cfg.H) if cfg.shard_type == 1 else y2.view(-1)[: El * cfg.ep * cfg.C * cfg.H].view(
        El, cfg.ep * cfg.C, cfg.H)
    runs = {
        "comm": lambda: _comm_only(ctx, cfg, x),
        "compute": lambda: _compute_only(cfg, y2, w, b, act),
        "unfused": lambda: unfused(ctx, cfg, x, w, b, act),
        "fused": lambda: fused(ctx, cfg, x, w, b, act),
        "fused_noagree": lambda: fused_without_agreement(ctx, cfg, x, w, b, act),
        "agreement": lambda: agreement_only(ctx, cfg, x, w, b, act),
    }
    out = {"times": {}, "peak": {}}
    together = ("fused", "fused_noagree", "agreement")  # compared with each other: interleaved
    for name, fn in runs.items():
        if name not in together:
            out["times"][name] = _timed(ctx, fn, cfg.iters, cfg.warmup, name, progress)
    out["times"].update(_timed_together(ctx, {k: runs[k] for k in together}, cfg.iters, cfg.warmup, progress))
    import torch.distributed as dist

    mem_runs = {"unfused": runs["unfused"], "fused": lambda: fused_kernel(ctx, cfg, x, w, b, act)}
    for name, fn in mem_runs.items():
        dist.barrier()
        out["peak"][name] = _peak_bytes(fn)
    if trace_fused:
        dist.barrier()
        trace.enable(True)
        t0 = time.perf_counter()
        runs["fused"]()
        t1 = time.perf_counter()
        time.sleep(0.05)  # let completion callbacks land
        spans = trace.collect()
        trace.enable(False)
        out["spans"] = [(k, lab, s - t0, e - t0) for k, lab, s, e in spans]
        out["span_total"] = t1 - t0
    return out


# --- the soak: many calls, memory and time per call over the run --------------------------------

def _rss_mb() -> float:
    """This process's resident set size (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak_rank(ctx, cfg: BenchConfig, calls: int, windows: int = 10, progress: bool = True):
    """`calls` fused calls back to back; RSS before and after each of `windows` equal windows,
    and the median call time of each window."""
    import gc

    import torch.distributed as dist

    from .contract.activations import parse_act_type

    act = parse_act_type(cfg.act)
    x, w, b = _inputs(ctx, cfg)
    per = max(1, calls // windows)
    fused(ctx, cfg, x, w, b, act)  # warm-up
    gc.collect()
    dist.barrier()
    rss, ms, times = [_rss_mb()], [], []
    for k in range(calls):
        t0 = time.perf_counter()
        fused(ctx, cfg, x, w, b, act)
        times.append(time.perf_counter() - t0)
        if (k + 1) % per == 0 or k + 1 == calls:
            rss.append(_rss_mb())
            ms.append(statistics.median(times) * 1e3)
            times = []
            if progress and ctx.rank == 0:
                print(f"[soak] {k + 1:>7} calls  rss {rss[-1]:7.1f} MB  median {ms[-1]:7.3f} ms/call",
                      file=sys.stderr, flush=True)
    return {"rss_mb": rss, "call_ms": ms}


def soak(cfg: BenchConfig, calls: int, *, progress: bool = True, world=None) -> dict:
    """Run the soak on a LocalWorld (started unless given); per rank RSS, per window ms."""
    from .launch import LocalWorld

    validate(cfg)
    own = world is None
    if own:
        world = LocalWorld(cfg.ep, cfg.tp, threads_per_rank=cfg.threads_per_rank or None)
    try:
        per_rank = world.run(soak_rank, cfg, calls, 10, progress)
    finally:
        if own:
            world.close()
    windows = len(per_rank[0]["call_ms"])
    return {
        "soak_calls": calls,
        "rss_mb": [[round(v, 1) for v in r["rss_mb"]] for r in per_rank],
        "call_ms": [round(max(r["call_ms"][k] for r in per_rank), 3) for k in range(windows)],
    }


def soak_table(cfg: BenchConfig, s: dict) -> str:
    lines = [f"soak: {s['soak_calls']} calls of npu_alltoall_allgather_bmm on {cfg.ep}x{cfg.tp} CPU ranks: E={cfg.E} "
             f"C={cfg.C} H={cfg.H} M={cfg.M} {cfg.dtype}",
             f"{'rank':>4} {'RSS MB before':>14} {'after':>8} {'min':>8} {'max':>8}"]
    for r, v in enumerate(s["rss_mb"]):
        lines.append(f"{r:>4} {v[0]:>14.1f} {v[-1]:>8.1f} {min(v):>8.1f} {max(v):>8.1f}")
    lines.append("median ms per call, per tenth of the run (slowest rank): "
                 + " ".join(f"{v:.3f}" for v in s["call_ms"]))
    return "\n".join(lines)


# --- the driver ---------------------------------------------------------------------------------

def summarize(per_rank: List[dict]) -> Dict[str, float]:
    r0 = per_rank[0]
    med = {k: statistics.median(v) * 1e3 for k, v in r0["times"].items()}  # already max over ranks
    comm, compute, fused_ms, unfused_ms = med["comm"], med["compute"], med["fused"], med["unfused"]
    peak = {k: max(r["peak"][k] for r in per_rank) / 2 ** 20 for k in ("fused", "unfused")}
    return {
        "fused_ms": round(fused_ms, 3),
        "fused_noagree_ms": round(med["fused_noagree"], 3),
        "agree_ms": round(med["agreement"], 3),
        "agree_pct": round(100 * med["agreement"] / fused_ms, 2),
        "unfused_ms": round(unfused_ms, 3),
        "comm_ms": round(comm, 3),
        "compute_ms": round(compute, 3),
        "speedup": round(unfused_ms / fused_ms, 3),
        "overlap": round((comm + compute - fused_ms) / max(min(comm, compute), 1e-9), 3),
        "fused_peak_mb": round(peak["fused"], 4),
        "unfused_peak_mb": round(peak["unfused"], 4),
    }


def table(cfg: BenchConfig, s: Dict[str, float]) -> str:
    lines = [
        f"npu_alltoall_allgather_bmm on {cfg.ep}x{cfg.tp} CPU ranks (gloo): E={cfg.E} C={cfg.C} H={cfg.H} "
        f"M={cfg.M} {cfg.dtype} shard_type={cfg.shard_type} act={cfg.act}{' bias' if cfg.bias else ''}, "
        f"median of {cfg.iters} after {cfg.warmup} warm-up",
        f"{'what':<34}{'ms':>10}{'peak MB':>10}",
        f"{'comm only (AllToAll + AllGather)':<34}{s['comm_ms']:>10.2f}{'':>10}",
        f"{'compute only (bmm + epilogue)':<34}{s['compute_ms']:>10.2f}{'':>10}",
        f"{'unfused sequence':<34}{s['unfused_ms']:>10.2f}{s['unfused_peak_mb']:>10.2f}",
        f"{'fused op':<34}{s['fused_ms']:>10.2f}{s['fused_peak_mb']:>10.2f}",
        f"{'fused op, agreement off':<34}{s['fused_noagree_ms']:>10.2f}",
        f"{'agreement (signature exchange)':<34}{s['agree_ms']:>10.2f}",
        f"speedup (unfused / fused) = {s['speedup']:.2f}    "
        f"overlap ((comm + compute - fused) / min) = {s['overlap']:.2f}    "
        f"agreement = {s['agree_pct']:.1f} % of the fused call",
    ]
    return "\n".join(lines)


def plot_timeline(per_rank: List[dict], path: str, cfg: BenchConfig, summary: Optional[dict] = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"compute": "#1f77b4", "comm": "#ff7f0e", "wait": "#d62728"}
    n = len(per_rank)
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.9 * n))
    for r, res in enumerate(per_rank):
        y = n - 1 - r
        for kind, label, s, e in res.get("spans", []):
            lane = {"comm": 0.45, "compute": 0.0, "wait": 0.0}.get(kind, 0.0)
            h = 0.4
            ax.broken_barh([(s * 1e3, max(e - s, 1e-6) * 1e3)], (y + lane - 0.45, h),
                           facecolors=colors.get(kind, "#7f7f7f"), edgecolor="white", linewidth=0.3,
                           alpha=0.6 if kind == "comm" else 0.9)
        ax.axvline(res.get("span_total", 0) * 1e3, ymin=0, ymax=1, color="k", lw=0.4, ls=":")
    ax.set_yticks([n - 1 - r for r in range(n)])
    ax.set_yticklabels([f"rank {r} (i={r % cfg.ep}, t={r // cfg.ep})" for r in range(n)])
    ax.set_xlabel("ms since the call started (upper lane: collectives in flight; lower: compute / waits)")
    title = f"fused op timeline, {cfg.ep}x{cfg.tp} ranks, E={cfg.E} C={cfg.C} H={cfg.H} M={cfg.M} {cfg.dtype}"
    if summary:
        title += f"  (fused {summary['fused_ms']:.1f} ms, speedup {summary['speedup']:.2f}, overlap {summary['overlap']:.2f})"
    ax.set_title(title, fontsize=9)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parse_args(argv) -> tuple:
    p = argparse.ArgumentParser(prog="python -m moe_mc2 bench", description=__doc__.split("\n\n")[0])
    d = BenchConfig()
    add_problem_args(p, ep=d.ep, tp=d.tp, E=d.E, C=d.C, H=d.H, M=d.M, dtypes=DTYPES, dtype=d.dtype, act=d.act,
                     shard_type=d.shard_type)
    p.add_argument("--iters", type=int, default=d.iters)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--bias", action="store_true", help="add a bias (El, M/tp)")
    p.add_argument("--threads-per-rank", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line last")
    p.add_argument("--plot", metavar="FILE", help="write a per-rank timeline of one fused call (PNG)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--soak", type=int, metavar="N", default=0,
                   help="instead: N fused calls back to back, RSS per rank and time per call over the run")
    a = p.parse_args(argv)
    cfg = BenchConfig(ep=a.ep, tp=a.tp, E=a.E, C=a.C, H=a.H, M=a.M, dtype=a.dtype, iters=a.iters, warmup=a.warmup,
                      shard_type=a.shard_type, act=a.act, bias=a.bias, threads_per_rank=a.threads_per_rank)
    return cfg, a


def validate(cfg: BenchConfig):
    """Every size in the user's terms (flags), before any process starts (contract/problem.py)."""
    from .contract.problem import check_problem

    check_problem("python -m moe_mc2 bench", ep=cfg.ep, tp=cfg.tp, E=cfg.E, C=cfg.C, H=cfg.H, M=cfg.M, shard_type=cfg.shard_type,
                  dtype=cfg.torch_dtype, act=cfg.act)
    for flag, v, low in (("--iters", cfg.iters, 1), ("--warmup", cfg.warmup, 0),
                         ("--threads-per-rank", cfg.threads_per_rank, 0)):
        if v < low:
            raise ValueError(f"{flag}={v} must be >= {low}")


def run(cfg: BenchConfig, *, progress: bool = True, plot: Optional[str] = None, world=None):
    """Measure (starting a LocalWorld unless one is given); returns (summary, per-rank results)."""
    from .launch import LocalWorld

    validate(cfg)
    own = world is None
    if own:
        if progress:
            print(f"[bench] starting {cfg.ep}x{cfg.tp} local ranks", file=sys.stderr, flush=True)
        world = LocalWorld(cfg.ep, cfg.tp, threads_per_rank=cfg.threads_per_rank or None)
    try:
        per_rank = world.run(bench_rank, cfg, progress, bool(plot))
    finally:
        if own:
            world.close()
    summary = summarize(per_rank)
    if plot:
        plot_timeline(per_rank, plot, cfg, summary)
    return summary, per_rank


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cfg, a = parse_args(argv)
    try:
        validate(cfg)
    except (ValueError, TypeError) as exc:
        print(exc if str(exc).startswith("python -m") else f"bench: {exc}", file=sys.stderr)
        return 2
    if a.soak:
        result = soak(cfg, a.soak, progress=not a.quiet)
        print(soak_table(cfg, result))
        if a.json:
            print(json.dumps(result))
        return 0
    summary, _ = run(cfg, progress=not a.quiet, plot=a.plot)
    print(table(cfg, summary))
    if a.plot:
        print(f"timeline: {a.plot}")
    if a.json:
        print(json.dumps(summary))
    return 0


