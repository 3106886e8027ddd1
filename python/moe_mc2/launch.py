"""Local multi-process worlds: ep x tp ranks on one machine, groups built as SPEC.md says.

`LocalWorld` starts the ranks once and runs many functions in them (tests, demo, bench):
`world.run(fn, *args)` calls `fn(ctx, *args)` on every rank and returns the per-rank results.
An exception on a rank is returned to the caller and the world stays usable.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from multiprocessing.reduction import ForkingPickler


def build_ep_tp_groups(ep: int, tp: int, backend=None):
    """Create every ep and tp group (collectively, on every rank); return this rank's pair.

    ep group k = world ranks [j + ep*k]; tp group k = world ranks [j*ep + k] (the seed's example).
    """
    rank = dist.get_rank()
    mine_ep = mine_tp = None
    for k in range(tp):
        ranks = [j + ep * k for j in range(ep)]
        g = dist.new_group(ranks=ranks, backend=backend, group_desc=f"moe_ep{k}")
        if rank in ranks:
            mine_ep = g
    for k in range(ep):
        ranks = [j * ep + k for j in range(tp)]
        g = dist.new_group(ranks=ranks, backend=backend, group_desc=f"moe_tp{k}")
        if rank in ranks:
            mine_tp = g
    return mine_ep, mine_tp


@dataclasses.dataclass
class RankContext:
    rank: int
    world_size: int
    ep: int
    tp: int
    ep_group: Any
    tp_group: Any

    @property
    def i(self) -> int:  # index inside the ep group
        return self.rank % self.ep

    @property
    def t(self) -> int:  # index inside the tp group
        return self.rank // self.ep

    @property
    def group_ep(self) -> str:
        return self.ep_group.group_name

    @property
    def group_tp(self) -> str:
        return self.tp_group.group_name


class RankError(RuntimeError):
    """An exception a rank raised that could not travel as itself."""


def _worker(rank, ep, tp, init_file, backend, threads, sys_path, tasks, results):
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=ep * tp)
    ep_group, tp_group = build_ep_tp_groups(ep, tp)
    ctx = RankContext(rank, ep * tp, ep, tp, ep_group, tp_group)
    results.put((rank, "ready", None))
    while True:
        item = tasks.get()
        if item is None:
            break
        fn, args, kwargs = item
        try:
            value = fn(ctx, *args, **kwargs)
            # The queue pickles in a background thread, where a failure would be lost and the
            # caller would wait for its timeout: find unpicklable results here.
            ForkingPickler.dumps(value)
            results.put((rank, "ok", value))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
            tb = traceback.format_exc()
            try:
                results.put((rank, "err", (exc, tb)))
            except Exception:  # unpicklable exception
                results.put((rank, "err", (RankError(f"{type(exc).__name__}: {exc}"), tb)))
    dist.destroy_process_group()


class LocalWorld:
    """ep x tp CPU ranks with gloo, started once and reused."""

    def __init__(self, ep: int, tp: int, *, backend: str = "gloo", threads_per_rank: int | None = None,
                 timeout: float = 300.0):
        self.ep, self.tp, self.size, self.timeout = ep, tp, ep * tp, timeout
        threads = threads_per_rank or max(1, (os.cpu_count() or 1) // self.size)
        ctx = mp.get_context("spawn")
        self._dir = tempfile.TemporaryDirectory(prefix="moe_mc2_world_")
        init_file = os.path.join(self._dir.name, "init")
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self.size)]
        self._procs = [
            ctx.Process(target=_worker, daemon=True,
                        args=(r, ep, tp, init_file, backend, threads, list(sys.path), self._tasks[r], self._results))
            for r in range(self.size)
        ]
        for p in self._procs:
            p.start()
        self._collect("ready")

    def _collect(self, expect: str | None = None) -> List[tuple]:
        got: dict = {}
        deadline = time.monotonic() + self.timeout
        while len(got) < self.size:
            try:
                rank, status, value = self._results.get(timeout=1.0)
            except queue.Empty:
                dead = [r for r, p in enumerate(self._procs) if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    self.close(force=True)
                    why = f"ranks {dead} died" if dead else f"no answer in {self.timeout:.0f} s"
                    raise RuntimeError(f"local world {self.ep}x{self.tp}: {why}; world closed")
                continue
            got[rank] = (status, value)
        return [got[r] for r in range(self.size)]

    def run_raw(self, fn: Callable, *args, **kwargs) -> List[tuple]:
        """Per rank ("ok", result) or ("err", (exception, traceback text))."""
        for q in self._tasks:
            q.put((fn, args, kwargs))
        return self._collect()

    def run(self, fn: Callable, *args, **kwargs) -> List[Any]:
        """Per-rank results; re-raises the first rank's exception (with its traceback attached)."""
        out = self.run_raw(fn, *args, **kwargs)
        for rank, (status, value) in enumerate(out):
            if status == "err":
                exc, tb = value
                exc.add_note(f"(raised on rank {rank})\n{tb}")
                raise exc
        return [value for _, value in out]

    def close(self, force: bool = False):
        if not force:
            for q in self._tasks:
                q.put(None)
        for p in self._procs:
            p.join(timeout=0 if force else 10)
            if p.is_alive():
                p.kill()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
