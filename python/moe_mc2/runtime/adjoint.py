"""The overlapped portable runtime of `npu_bmm_reducescatter_alltoall` (the adjoint op).

Per rank (i, t): T = bmm(x, weight) (El, ep*C, H) in fp32 -> ReduceScatter over tp (fp32 sums)
-> + bias -> one rounding to x's dtype -> AllToAll over ep -> out. docs/contract.md, "The companion op".

Pipeline. The output rows (C/tp for shard_type 1, C for shard_type 0) are cut into tiles. For
tile k the rank computes, for every tp destination s, the tile's product block straight into an
fp32 send buffer laid out (s, e, j, c, h) (dim 0 = the ReduceScatter's chunk); the
ReduceScatter of tile k is then issued asynchronously while tile k+1's matmul runs. When tile k's
sums arrive they get the bias and are rounded into the AllToAll's send layout (j, e, c, h) in
one pass (the permutation rides on the rounding copy), and the AllToAll of tile k is issued,
again asynchronously; its result is copied into `out` two tiles later. Buffers rotate in pairs,
so memory is a few tiles, never a full fp32 copy of T.

`weight=None` routes x itself (T = x): the gradient route of the forward op's y2 output.
"""
from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from ..contract import adjoint_rules
from ..contract.errors import ContractValueError
from ..contract.names import ADJOINT_OP_NAME
from ..contract.rules import dtype_name
from . import agreement, collectives, groups, trace
from .numerics import TileMath

try:  # the forward's cost model (rates of gloo / nccl / hccl); optional
    from ..planning.tiles import cost_model as _cost_model
except Exception:  # pragma: no cover - planner not present
    _cost_model = None


@dataclass(frozen=True)
class AdjointPlan:
    tiles: List[Tuple[int, int]]  # [c0, c1) over the output rows
    predicted_s: float
    serial_s: float

    @property
    def fingerprint(self) -> int:
        return zlib.crc32(repr(tuple(self.tiles)).encode())


def _splits(n: int, parts: int) -> List[Tuple[int, int]]:
    step = math.ceil(n / max(1, parts))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


@functools.lru_cache(maxsize=256)
def plan_tiles(s: adjoint_rules.AdjointShapes, dtype: torch.dtype, backend: str = "gloo", *,
               tiles: Optional[int] = None, max_tiles: int = 32, with_matmul: bool = True) -> AdjointPlan:
    """Tiling of the output rows minimising a 3-stage pipeline model (matmul, RS, AllToAll).

    Depends only on shapes, dtype and backend, so every rank picks the same plan (the call's
    signature carries its fingerprint, runtime/agreement.py). Cached per call shape.
    """
    rows = s.out_rows
    if _cost_model is None:
        chunks = _splits(rows, tiles or min(rows, 4))
        return AdjointPlan(chunks, 0.0, 0.0)
    nbytes = torch.empty((), dtype=dtype).element_size()
    cost = _cost_model(backend, dtype_name(dtype), s.ep * s.tp)

    def simulate(chunks):
        comp_end = rs_end = a2a_end = serial = 0.0
        for c0, c1 in chunks:
            cc = c1 - c0
            elems = s.El * s.ep * cc * s.out_cols  # one destination's piece of the tile
            flops = 2.0 * s.El * s.ep * s.tp * cc * s.N * s.out_cols if with_matmul else 0.0
            # one bmm per tile: its weight is packed / streamed again for every tile
            w_bytes = s.El * s.N * s.H * nbytes if with_matmul else 0
            comp = (flops / cost.flops_per_s + (s.tp * elems * 4 + w_bytes) / cost.copy_bytes_per_s
                    + cost.tile_overhead_s)
            rs = cost.latency_s + (s.tp - 1) * elems * 4 / cost.ag_bytes_per_s
            a2a = cost.latency_s + (s.ep - 1) / s.ep * elems * nbytes / cost.a2a_bytes_per_s
            epi = elems * (4 + nbytes) / cost.copy_bytes_per_s
            comp_end += comp
            rs_end = max(rs_end, comp_end) + rs
            a2a_end = max(a2a_end, rs_end + epi) + a2a
            serial += comp + rs + epi + a2a
        return a2a_end, serial

    candidates = [tiles] if tiles else range(1, min(rows, max_tiles) + 1)
    best = None
    for t in candidates:
        chunks = _splits(rows, min(t, rows))
        predicted, _ = simulate(chunks)
        if best is None or predicted < best[0] * (1 - 1e-3):
            best = (predicted, chunks)
    _, serial = simulate([(0, rows)])
    return AdjointPlan(best[1], best[0], serial)


class _Ring:
    """Two flat buffers per role, viewed per tile (tiles may differ in size)."""

    def __init__(self, numel: int, dtype, device):
        self._bufs = [torch.empty(numel, dtype=dtype, device=device) for _ in range(2)]

    def get(self, k: int, shape) -> torch.Tensor:
        return self._bufs[k % 2][: math.prod(shape)].view(shape)


def run(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor], *, group_ep: str, ep: int,
        group_tp: str, tp: int, shard_type: int, tiles: Optional[int] = None) -> torch.Tensor:
    """out of npu_bmm_reducescatter_alltoall on this rank: checked, agreed on with every peer
    (runtime/agreement.py) before any data collective, then overlapped."""
    op = ADJOINT_OP_NAME

    def check(resolve):
        if weight is None:  # route only (T = x): the gradient of the forward op's y2
            adjoint_rules.check_tensor_args(op, x, None, bias, weight_optional=True)
            El, rows, H = x.shape
            resolve()
            s = adjoint_rules.AdjointShapes(ep=ep, tp=tp, shard_type=shard_type, E=El * ep, El=El, C=rows // ep,
                                            H=H, N=H)
        else:
            s = adjoint_rules.check_adjoint_tensors(x, weight, bias, group_ep, ep, group_tp, tp, shard_type,
                                                    portable=True, resolve=resolve)
        if tiles is not None and (isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1):
            raise ContractValueError(op, "tiles", tiles, "env.value", "must be a positive int or None")
        plan = plan_tiles(s, x.dtype, groups.backend_name(resolve()[0]), tiles=tiles, with_matmul=weight is not None)
        return s, plan

    (s, plan), pg_ep, pg_tp, agree = agreement.check_on_this_rank(op, group_ep, ep, group_tp, tp, check)
    if agree:
        w_shape = (s.El, s.N, s.H) if weight is not None else (0, 0, 0)
        agreement.confirm(op, agreement.signature(
            op, ep=ep, tp=tp, shard_type=shard_type, x=x, weight_shape=w_shape, bias=bias, tiles=tiles,
            plan=plan.fingerprint), pg_ep, pg_tp)

    dtype, device = x.dtype, x.device
    El, C, Hc, R = s.El, s.C, s.out_cols, s.out_rows
    max_cc = max(c1 - c0 for c0, c1 in plan.tiles)

    tm = TileMath(dtype, device)
    w_mm = None if weight is None else tm.weight_block(weight)
    K = x.shape[2]
    # x rows in the contract's order: shard 1 -> x[e, j*C + s*Ct + c]; shard 0 -> x[e, j*C + c].
    xv = x.unflatten(1, (ep, tp, R)) if shard_type == 1 else x.unflatten(1, (ep, C))  # views, any strides

    out = torch.empty(s.out, dtype=dtype, device=device)
    out_v = out.view(ep, El, R, Hc)
    piece = El * ep * max_cc * Hc
    send32 = _Ring(tp * piece, torch.float32, device)
    recv32 = _Ring(piece, torch.float32, device)
    a2a_in = _Ring(piece, dtype, device)
    a2a_out = _Ring(piece, dtype, device)
    bias32 = None if bias is None else bias.float().reshape(El, 1, 1, Hc)

    rs_work: dict = {}
    a2a_work: dict = {}

    def compute(k, c0, c1):
        """Tile k's products, one bmm for every destination, into the fp32 RS send buffer."""
        cc = c1 - c0
        buf = send32.get(k, (tp, El, ep * cc, Hc))
        with trace.span("compute", f"bmm {k}"):
            if shard_type == 1:  # rows (s, j, c): destination s outermost after the expert
                a = xv[:, :, :, c0:c1].transpose(1, 2).reshape(El, tp * ep * cc, K)
            else:  # rows (j, c); destination s picks a column block of H
                a = xv[:, :, c0:c1].reshape(El, ep * cc, K)
            r = a if w_mm is None else tm.product(a, w_mm)
            if shard_type == 1:
                buf.copy_(r.view(El, tp, ep * cc, Hc).transpose(0, 1))
            else:
                buf.copy_(r.view(El, ep * cc, tp, Hc).permute(2, 0, 1, 3))
        rs_work[k] = trace.comm(f"reduce_scatter {k}",
                                collectives.reduce_scatter(recv32.get(k, (El * ep * cc * Hc,)), buf.view(-1), pg_tp))

    def epilogue(k, c0, c1):
        cc = c1 - c0
        collectives.wait(rs_work.pop(k), op, "group_tp", pg_tp, f"the ReduceScatter of tile {k}")
        acc = recv32.get(k, (El, ep, cc, Hc))
        snd = a2a_in.get(k, (ep, El, cc, Hc))
        with trace.span("compute", f"epilogue {k}"):
            if bias32 is not None:
                acc.add_(bias32)
            snd.permute(1, 0, 2, 3).copy_(acc)  # one rounding, (e, j) -> (j, e)
        a2a_work[k] = trace.comm(f"all_to_all {k}",
                                 collectives.all_to_all(a2a_out.get(k, (ep, El, cc, Hc)), snd, pg_ep))

    def finish(k, c0, c1):
        collectives.wait(a2a_work.pop(k), op, "group_ep", pg_ep, f"the AllToAll of tile {k}")
        with trace.span("compute", f"copy out {k}"):
            out_v[:, :, c0:c1].copy_(a2a_out.get(k, (ep, El, c1 - c0, Hc)))

    t = plan.tiles
    for k, (c0, c1) in enumerate(t):
        compute(k, c0, c1)
        if k >= 1:
            epilogue(k - 1, *t[k - 1])
        if k >= 2:
            finish(k - 2, *t[k - 2])
    n = len(t)
    if n >= 1:
        epilogue(n - 1, *t[n - 1])
    for k in range(max(0, n - 2), n):
        finish(k, *t[k])
    return out
