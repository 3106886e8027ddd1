"""Tile planner of the portable runtime: a cost model of each tile's AllToAll + AllGather
against its batched matmul, and the tile count that minimises the predicted makespan.

The plan must be identical on every rank (each rank issues the collectives of every tile in
plan order), so it is a function of the call only: shapes, dtype, the backend's family and the
world size, plus the tile settings, which each call's signature carries so that the ranks agree
on them (runtime/agreement.py, which also compares the plans' fingerprints). Nothing of the host
(core count, timings, one rank's environment) enters it. The NPU kernel's planner (op_host/core) follows the same
model with Atlas A3 constants.

Pipeline model: one communication stream (tile k's AllToAll then AllGather) and one compute
stream that starts with the rank's own block (shard_type 1: it needs no network), then tile k
as soon as its data has arrived:  comp_end[k] = max(comp_end[k-1], comm_end[k]) + comp[k].
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field
from typing import List, Tuple

from ..contract.rules import ForwardShapes


@dataclass(frozen=True)
class CostModel:
    name: str
    a2a_bytes_per_s: float
    ag_bytes_per_s: float
    latency_s: float  # per collective
    flops_per_s: float  # this rank's matmul rate at the compute dtype
    copy_bytes_per_s: float  # staging copies (send buffer, gathered -> matmul layout)
    tile_overhead_s: float  # per tile: Python dispatch, kernel launches


# The gloo rates below are per rank, measured with every rank of a 2x2 world busy on the 2-core
# development machine: half a core per rank. They are constants, not the host's core count, so
# that ranks on different hosts plan alike.
GLOO_CORE_SHARE = 0.5


def cost_model(backend: str, dtype_name: str, world: int) -> CostModel:
    """Rates of a backend; CPU figures were measured on the 2-core development machine."""
    backend = backend.lower()
    if backend == "gloo":
        share = GLOO_CORE_SHARE
        # Measured on the 2-core development machine, 2x2 world, all ranks busy at once:
        # bf16 oneDNN bmm ~225 GFLOP/s per rank (so ~450 per core-share), fp32 ~90 per core,
        # fp16 is upcast to fp32; gloo AllToAll ~1 GB/s, AllGather ~0.5 GB/s received,
        # ~0.5 ms per collective.
        per_core = {"bfloat16": 450e9, "float16": 80e9, "float32": 90e9}.get(dtype_name, 90e9)
        return CostModel("gloo-cpu", a2a_bytes_per_s=1.0e9, ag_bytes_per_s=0.5e9, latency_s=500e-6,
                         flops_per_s=per_core * min(1.0, share), copy_bytes_per_s=4e9 * min(1.0, share),
                         tile_overhead_s=150e-6)
    if backend == "nccl":
        return CostModel("nccl", a2a_bytes_per_s=100e9, ag_bytes_per_s=150e9, latency_s=20e-6,
                         flops_per_s=400e12 if dtype_name != "float32" else 50e12,
                         copy_bytes_per_s=1.5e12, tile_overhead_s=15e-6)
    # hccl (portable path on an NPU): Atlas A3 HCCS-class links, cube ~ 300 TFLOP/s fp16.
    return CostModel("hccl", a2a_bytes_per_s=90e9, ag_bytes_per_s=90e9, latency_s=30e-6,
                     flops_per_s=300e12 if dtype_name != "float32" else 75e12,
                     copy_bytes_per_s=1e12, tile_overhead_s=30e-6)


@dataclass(frozen=True)
class Tile:
    index: int
    e0: int
    e1: int  # local experts [e0, e1)
    c0: int
    c1: int  # rows of x's dim 1 [c0, c1)

    @property
    def experts(self) -> int:
        return self.e1 - self.e0

    @property
    def rows(self) -> int:
        return self.c1 - self.c0


@dataclass
class Plan:
    tiles: List[Tile]
    expert_blocks: List[Tuple[int, int]]
    local_first: bool
    predicted_s: float
    serial_s: float  # the same work with no overlap at all
    cost: CostModel = field(repr=False, default=None)

    @property
    def count(self) -> int:
        return len(self.tiles)

    @functools.cached_property
    def fingerprint(self) -> int:
        """A hash of the tiles' order and extents, the same in every process for the same plan."""
        desc = (tuple((t.e0, t.e1, t.c0, t.c1) for t in self.tiles), tuple(self.expert_blocks), self.local_first)
        return zlib.crc32(repr(desc).encode())


def _splits(n: int, parts: int) -> List[Tuple[int, int]]:
    step = math.ceil(n / parts)
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def _tile_costs(s: ForwardShapes, ek: int, cc: int, nbytes: int, cost: CostModel):
    chunk = ek * cc * s.x_cols * nbytes  # one source rank's piece of the tile
    comm = (2 * cost.latency_s + (s.ep - 1) * chunk / cost.a2a_bytes_per_s
            + (s.tp - 1) * s.ep * chunk / cost.ag_bytes_per_s)
    own = 1 if s.shard_type == 1 else 0  # own block already computed by the local phase
    rows = (s.ep * s.tp - own) * cc if s.shard_type == 1 else s.ep * cc
    flops = 2.0 * ek * rows * s.H * s.N
    staging = (1 + s.ep * s.tp) * chunk  # send-buffer copy + gathered -> matmul layout
    comp = (flops / cost.flops_per_s + (staging + _weight_bytes(s, ek, nbytes)) / cost.copy_bytes_per_s
            + cost.tile_overhead_s)
    return comm, comp


def _weight_bytes(s: ForwardShapes, ek: int, nbytes: int) -> int:
    """Bytes a GEMM call re-reads to pack its weight block: every bmm call pays it once."""
    return ek * s.H * s.N * nbytes


LOCAL_CALLS = 2  # runtime.forward.LOCAL_SLICES: bmm calls of the local block


def _subtiles(blocks, expert_parts: int, chunks):
    """Tiles in execution order: per expert block, per expert part, per row chunk."""
    out = []
    for b0, b1 in blocks:
        for f0, f1 in _splits(b1 - b0, min(expert_parts, b1 - b0)):
            out += [(b0 + f0, b0 + f1, c0, c1) for c0, c1 in chunks]
    return out


def simulate(s: ForwardShapes, blocks, chunks, nbytes: int, cost: CostModel, local_first: bool,
             expert_parts: int = 1):
    """(predicted makespan, no-overlap sum) of a tiling."""
    comm_end = comp_end = serial = 0.0
    for b0, b1 in blocks:
        if local_first:
            ek = b1 - b0
            local = (2.0 * ek * s.x_rows * s.H * s.N / cost.flops_per_s
                     + LOCAL_CALLS * _weight_bytes(s, ek, nbytes) / cost.copy_bytes_per_s)
            comp_end += local
            serial += local
        for e0, e1, c0, c1 in _subtiles([(b0, b1)], expert_parts, chunks):
            comm, comp = _tile_costs(s, e1 - e0, c1 - c0, nbytes, cost)
            comm_end += comm
            comp_end = max(comp_end, comm_end) + comp
            serial += comm + comp
    return comp_end, serial


def _counts(limit: int, max_count: int) -> List[int]:
    """Candidate split counts: 1, 2, 3, 4, 6, 8, 12, ... up to min(limit, max_count)."""
    top = min(limit, max_count)
    out, k = [], 1
    while k <= top:
        out += [k] + ([k * 3 // 2] if k >= 2 and k * 3 // 2 <= top else [])
        k *= 2
    return sorted(set(out + [top]))


@functools.lru_cache(maxsize=256)
def plan_forward(s: ForwardShapes, nbytes: int, cost: CostModel, *, upcast_weight: bool = False,
                 weight_budget_bytes: int = 64 << 20, max_tiles: int = 64, tiles: int | None = None,
                 expert_tiles: int | None = None) -> Plan:
    """Choose expert blocks (bounding an fp32 weight copy), then how each block is cut into
    expert parts x row chunks, with the least predicted makespan (ties go to fewer tiles).

    Cutting along experts costs the GEMMs nothing (each weight is read once either way); cutting
    along rows makes every row chunk re-read the block's weights. `tiles` / `expert_tiles` force
    the row-chunk / expert-part counts (tests, benchmarks). Plans are cached per call shape.
    """
    n_blocks = 1
    if upcast_weight:
        n_blocks = min(s.El, max(1, math.ceil(s.El * s.H * s.N * 4 / weight_budget_bytes)))
    blocks = _splits(s.El, n_blocks)
    local_first = s.shard_type == 1
    smallest = min(b1 - b0 for b0, b1 in blocks)
    e_cands = [expert_tiles] if expert_tiles else ([1] if tiles else _counts(smallest, max_tiles))
    c_cands = [tiles] if tiles else _counts(s.x_rows, max_tiles)
    best = None
    for ne in e_cands:
        for nc in c_cands:
            if not (tiles or expert_tiles) and ne * nc > max_tiles:
                continue
            chunks = _splits(s.x_rows, max(1, min(nc, s.x_rows)))
            predicted, _ = simulate(s, blocks, chunks, nbytes, cost, local_first, ne)
            if best is None or predicted < best[0] * (1 - 1e-3):
                best = (predicted, ne, chunks)
    predicted, ne, chunks = best
    _, serial = simulate(s, blocks, [(0, s.x_rows)], nbytes, cost, local_first)
    out = [Tile(k, *t) for k, t in enumerate(_subtiles(blocks, ne, chunks))]
    return Plan(out, blocks, local_first, predicted, serial, cost)
