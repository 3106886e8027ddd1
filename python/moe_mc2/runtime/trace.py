"""A tiny per-process span recorder for timelines (bench --plot). A no-op unless enabled.

The pipelines wrap their phases in `trace.span(kind, label)` (kind "compute" or "comm") and hand
async collectives to `trace.comm(label, work)`, which records the span from the issue to the
moment the collective completes (a done-callback on the Work's future, so the end is the real
completion and not the later `wait()`). Times are `time.perf_counter()` seconds.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import List, Tuple

Span = Tuple[str, str, float, float]  # (kind, label, start, end)

_lock = threading.Lock()
_enabled = False
_spans: List[Span] = []


def enabled() -> bool:
    return _enabled


def enable(on: bool = True) -> None:
    """Start (or stop) recording; starting clears earlier spans."""
    global _enabled
    with _lock:
        if on:
            _spans.clear()
        _enabled = on


def collect() -> List[Span]:
    """The spans recorded so far (a copy), sorted by start."""
    with _lock:
        return sorted(_spans, key=lambda s: s[2])


def record(kind: str, label: str, start: float, end: float) -> None:
    if _enabled:
        with _lock:
            _spans.append((kind, label, start, end))


@contextlib.contextmanager
def span(kind: str, label: str = ""):
    """Record the enclosed block as one span of `kind`."""
    if not _enabled:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        record(kind, label, start, time.perf_counter())


def comm(label: str, work, kind: str = "comm"):
    """Record an async collective from now to its completion; returns `work` unchanged."""
    if not _enabled or work is None:
        return work
    start = time.perf_counter()
    try:
        fut = work.get_future()
    except Exception:  # backends without futures: the span ends at wait()
        return _WaitSpan(work, kind, label, start)
    fut.add_done_callback(lambda _f: record(kind, label, start, time.perf_counter()))
    return work


class _WaitSpan:
    def __init__(self, work, kind, label, start):
        self._work, self._kind, self._label, self._start = work, kind, label, start

    def wait(self, *args, **kwargs):
        out = self._work.wait(*args, **kwargs)
        record(self._kind, self._label, self._start, time.perf_counter())
        return out

    def __getattr__(self, name):
        return getattr(self._work, name)
