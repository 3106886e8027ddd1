"""Local multi-process worlds: ep x tp ranks on one machine, groups built as docs/contract.md says.

`LocalWorld` starts the ranks once and runs many functions in them (tests, demo, bench):
`world.run(fn, *args)` calls `fn(ctx, *args)` on every rank and returns the per-rank results.
An exception on a rank is returned to the caller. When every rank answers, the world stays
usable; when a rank fails while others do not answer within `error_grace` seconds (they wait in
a collective the failed rank never joined), the failing rank's own error is raised at once and
the world is closed (its groups cannot be trusted any more).
"""
from __future__ import annotations

import dataclasses
import datetime
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


def world_timeout() -> datetime.timedelta:
    """The timeout the default process group was initialised with (init_process_group(timeout=...)),
    or torch's default for its backend where it cannot be read."""
    from torch.distributed import distributed_c10d as c10d

    pg = c10d._get_default_group()
    for device in ("cpu", "cuda", "npu"):
        try:
            return pg._get_backend(torch.device(device)).options._timeout
        except Exception:  # no backend for that device, or one without options
            continue
    return c10d._get_default_timeout(dist.get_backend(pg))


def build_ep_tp_groups(ep: int, tp: int, backend=None, timeout=None):
    """Create every ep and tp group (collectively, on every rank); return this rank's pair.

    ep group k = world ranks [j + ep*k]; tp group k = world ranks [j*ep + k] (the seed's example).
    `timeout` (a timedelta or seconds) bounds every collective of the groups: a rank that never
    arrives turns into an error on its peers after it. Default: the world's own timeout (torch's
    new_group would otherwise fall back to its 30-minute default, whatever init_process_group said).
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("build_ep_tp_groups: call torch.distributed.init_process_group first")
    world = dist.get_world_size()
    for name, v in (("ep", ep), ("tp", tp)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"build_ep_tp_groups: {name}={v!r} must be a positive int")
    if ep * tp != world:
        raise ValueError(f"build_ep_tp_groups: ep * tp = {ep} * {tp} = {ep * tp} must equal the world size {world}")
    if timeout is None:
        timeout = world_timeout()
    elif not isinstance(timeout, datetime.timedelta):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"build_ep_tp_groups: timeout={timeout!r} must be a timedelta or positive seconds")
        timeout = datetime.timedelta(seconds=timeout)
    rank = dist.get_rank()
    mine_ep = mine_tp = None
    for k in range(tp):
        ranks = [j + ep * k for j in range(ep)]
        g = dist.new_group(ranks=ranks, backend=backend, timeout=timeout, group_desc=f"moe_ep{k}")
        if rank in ranks:
            mine_ep = g
    for k in range(ep):
        ranks = [j * ep + k for j in range(tp)]
        g = dist.new_group(ranks=ranks, backend=backend, timeout=timeout, group_desc=f"moe_tp{k}")
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


def _worker(rank, ep, tp, init_file, backend, threads, sys_path, tasks, results, comm_timeout):
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=ep * tp,
                            timeout=datetime.timedelta(seconds=comm_timeout))
    ep_group, tp_group = build_ep_tp_groups(ep, tp)  # the world's timeout
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
    """ep x tp CPU ranks with gloo, started once and reused.

    timeout: seconds a run may take before the world is declared stuck (closed, RuntimeError);
    comm_timeout: the collective timeout of the world and of its ep/tp groups;
    error_grace: after one rank failed, how long the others may take to answer before the
    failing rank's error is raised and the world closed.
    """

    def __init__(self, ep: int, tp: int, *, backend: str = "gloo", threads_per_rank: int | None = None,
                 timeout: float = 300.0, comm_timeout: float = 120.0, error_grace: float = 10.0):
        for name, v in (("ep", ep), ("tp", tp)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LocalWorld: {name}={v!r} must be a positive int")
        self.ep, self.tp, self.size, self.timeout = ep, tp, ep * tp, timeout
        self.comm_timeout, self.error_grace = comm_timeout, error_grace
        self.closed = False
        threads = threads_per_rank or max(1, (os.cpu_count() or 1) // self.size)
        ctx = mp.get_context("spawn")
        self._dir = tempfile.TemporaryDirectory(prefix="moe_mc2_world_")
        init_file = os.path.join(self._dir.name, "init")
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self.size)]
        self._procs = [
            ctx.Process(target=_worker, daemon=True,
                        args=(r, ep, tp, init_file, backend, threads, list(sys.path), self._tasks[r], self._results,
                              comm_timeout))
            for r in range(self.size)
        ]
        for p in self._procs:
            p.start()
        self._collect("ready")

    def _collect(self, expect: str | None = None) -> List[tuple]:
        got: dict = {}
        deadline = time.monotonic() + self.timeout
        first_error = None  # (rank, time) of the first rank that failed
        while len(got) < self.size:
            try:
                rank, status, value = self._results.get(timeout=0.2)
            except queue.Empty:
                now = time.monotonic()
                dead = [r for r, p in enumerate(self._procs) if not p.is_alive()]
                if first_error is not None and now > first_error[1] + self.error_grace:
                    self._give_up_after_error(first_error[0], got)
                if dead or now > deadline:
                    self.close(force=True)
                    why = f"ranks {dead} died" if dead else f"no answer in {self.timeout:.0f} s"
                    raise RuntimeError(f"local world {self.ep}x{self.tp}: {why}; world closed")
                continue
            got[rank] = (status, value)
            if status == "err" and first_error is None:
                first_error = (rank, time.monotonic())
        return [got[r] for r in range(self.size)]

    def _give_up_after_error(self, rank: int, got: dict):
        """Rank `rank` failed and some peers did not answer in error_grace seconds: they wait in a
        collective it never joined. Raise its own error now and close the world."""
        silent = [r for r in range(self.size) if r not in got]
        exc, tb = got[rank][1]
        self.close(force=True)
        exc.add_note(f"(raised on rank {rank}; ranks {silent} did not answer within {self.error_grace:g} s "
                     f"after it, so the local world {self.ep}x{self.tp} was closed)\n{tb}")
        raise exc

    def run_raw(self, fn: Callable, *args, **kwargs) -> List[tuple]:
        """Per rank ("ok", result) or ("err", (exception, traceback text))."""
        if self.closed:
            raise RuntimeError(f"local world {self.ep}x{self.tp} is closed")
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
        if self.closed:
            return
        self.closed = True
        if not force:
            for q in self._tasks:
                q.put(None)
        for p in self._procs:
            p.join(timeout=0 if force else 10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
