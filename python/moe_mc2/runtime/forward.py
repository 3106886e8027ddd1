"""The overlapped forward pipeline of npu_alltoall_allgather_bmm on torch.distributed.

Per rank (i, t), for each tile of the plan (a block of local experts x a range of x's rows):
AllToAll over ep -> AllGather over tp -> one staging copy into matmul layout -> bmm -> fp32
epilogue (bias, activation, one rounding) written straight into y1/y3 (and y2). The
collectives of the next tiles are in flight while the current tile computes; with
shard_type 1 the rank's own block, which needs no network, is computed first. Before any of
that, the ranks agree on the call (runtime/agreement.py).
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.distributed as dist

from ..contract import rules
from ..contract.errors import ContractValueError
from ..contract.names import OP_NAME
from ..planning.tiles import LOCAL_CALLS, cost_model, plan_forward
from . import agreement, collectives, groups, settings, trace
from .numerics import TileMath, epilogue

PIPELINE_DEPTH = 2  # tiles in flight while one computes
# The local block is computed in this many pieces, polling comm between them (few: every bmm
# call re-packs the weight block; the planner's cost model counts the same calls).
LOCAL_SLICES = LOCAL_CALLS

# shard_type 1: compute the rank's own block (it needs nobody's data) while the agreement's two
# all_gathers are in flight, instead of waiting for them first; no data collective is issued
# before the agreement says yes either way.
OVERLAP_AGREEMENT = True

_forced: dict = {}


@contextlib.contextmanager
def forced_tiles(rows: Optional[int], experts: Optional[int] = None):
    """Force the plan's row-chunk (and expert-part) counts (tests, benchmarks); the planner
    searches them otherwise. The environment variables MOE_MC2_TILES and
    MOE_MC2_EXPERT_TILES do the same for whole processes."""
    global _forced
    old, _forced = _forced, {"rows": rows, "experts": experts}
    try:
        yield
    finally:
        _forced = old


def _override(op: str, key: str, env: str) -> Optional[int]:
    if _forced.get(key) is not None:
        value = _forced[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ContractValueError(op, f"forced_tiles({key})", value, "env.value", "must be a positive int or None")
        return value
    return settings.positive_int(op, env)


def run(x, weight, bias, *, group_ep, ep, group_tp, tp, shard_type, act_type, need_allgather_out,
        need_activation_feature):
    """Check this rank's call, agree on it with every peer (runtime/agreement.py), plan, execute.

    No data collective is issued before every rank of both groups has checked its own call and
    the ranks have agreed that they all make the same one."""
    op = OP_NAME

    def check(resolve):
        s = rules.check_forward_tensors(x, weight, bias, group_ep, ep, group_tp, tp, shard_type, act_type,
                                        portable=True, resolve=resolve)
        want_y2 = rules.check_flag(op, "need_allgather_out", need_allgather_out)
        want_y3 = rules.check_flag(op, "need_activation_feature", need_activation_feature) and act_type != 0
        rows, experts = _override(op, "rows", settings.TILES), _override(op, "experts", settings.EXPERT_TILES)
        math = TileMath(x.dtype, x.device)
        cost = cost_model(groups.backend_name(resolve()[0]), rules.dtype_name(x.dtype), dist.get_world_size())
        plan = plan_forward(s, x.element_size(), cost, upcast_weight=math.upcast, tiles=rows, expert_tiles=experts)
        return s, want_y2, want_y3, rows, experts, math, plan

    (s, want_y2, want_y3, rows, experts, math, plan), pg_ep, pg_tp, agree = agreement.check_on_this_rank(
        op, group_ep, ep, group_tp, tp, check)
    gate = None
    if agree:
        gate = agreement.start(op, agreement.signature(
            op, ep=ep, tp=tp, shard_type=shard_type, act_type=act_type, y2=need_allgather_out,
            y3=need_activation_feature, x=x, weight_shape=(s.El, s.H, s.N), bias=bias, tiles=rows,
            expert_tiles=experts, plan=plan.fingerprint), pg_ep, pg_tp)
        if not (plan.local_first and OVERLAP_AGREEMENT):
            gate.finish()  # nothing to compute before the first data collective: just wait
    return _Forward(x, weight, bias, s, pg_ep, pg_tp, act_type, want_y2, want_y3, math, plan).execute(gate)


class _CommPipeline:
    """Issues each tile's AllToAll, then its AllGather once the AllToAll is done, in plan order.

    Every rank issues the same collectives in the same order on each group; `poll` only moves
    work forward that is ready, `take` blocks for one tile.
    """

    def __init__(self, plan, xv, s, ep_group, tp_group, gate=None):
        self.gate = gate  # the agreement in flight: no data collective before it says yes
        self.tiles, self.xv, self.s = plan.tiles, xv, s
        self.ep_group, self.tp_group = ep_group, tp_group
        self.a2a, self.ag = {}, {}
        self.next_a2a = self.next_ag = self.consumed = 0

    def _issue_a2a(self):
        k = self.next_a2a
        tile = self.tiles[k]
        src = self.xv[:, tile.e0:tile.e1, tile.c0:tile.c1]
        send = src if src.is_contiguous() else src.contiguous()
        recv = torch.empty_like(send, memory_format=torch.contiguous_format)
        work = trace.comm(f"alltoall {k}", collectives.all_to_all(recv, send, self.ep_group))
        self.a2a[k] = (work, recv, send)
        self.next_a2a += 1

    def _issue_ag(self, block: bool) -> bool:
        k = self.next_ag
        work, recv, _send = self.a2a[k]
        if not block and not work.is_completed():
            return False
        collectives.wait(work, OP_NAME, "group_ep", self.ep_group, f"the AllToAll of tile {k}")
        del self.a2a[k]
        # gloo wants the output concatenated along dim 0; view it as (tp, ep, ...) afterwards
        gathered = recv.new_empty((self.s.tp * recv.shape[0],) + tuple(recv.shape[1:]))
        work = trace.comm(f"allgather {k}", collectives.all_gather(gathered, recv, self.tp_group))
        self.ag[k] = (work, gathered.view((self.s.tp,) + tuple(recv.shape)))
        self.next_ag += 1
        return True

    def poll(self):
        if self.gate is not None:
            if not self.gate.advance():
                return
            self.gate = None
        while self.next_ag < self.next_a2a and self._issue_ag(block=False):
            pass
        while self.next_a2a < len(self.tiles) and self.next_a2a < self.consumed + PIPELINE_DEPTH:
            self._issue_a2a()

    def take(self, k: int) -> torch.Tensor:
        """Tile k's gathered input (tp, ep, experts, rows, x_cols), waiting for it."""
        if self.gate is not None:
            self.gate.finish()
            self.gate = None
        self.poll()
        while self.next_ag <= k:
            self._issue_ag(block=True)
        work, gathered = self.ag.pop(k)
        with trace.span("wait", f"tile {k}"):
            collectives.wait(work, OP_NAME, "group_tp", self.tp_group, f"the AllGather of tile {k}")
        self.consumed = k + 1
        self.poll()
        return gathered


class _Forward:
    def __init__(self, x, weight, bias, s, ep_group, tp_group, act, want_y2, want_y3, math, plan):
        self.x, self.weight, self.s, self.act = x, weight, s, act
        self.ep_group, self.tp_group = ep_group, tp_group
        self.i, self.t = dist.get_rank(ep_group), dist.get_rank(tp_group)
        self.math, self.plan = math, plan
        self.bias32 = None if bias is None else bias.reshape(s.El, 1, s.N).float()
        rows = s.rows
        self.y1 = x.new_empty((s.El, rows, s.N))
        self.y2 = x.new_empty((s.El, rows, s.H)) if want_y2 else None
        self.y3 = x.new_empty((s.El, rows, s.N)) if want_y3 else None

    def execute(self, gate=None):
        s, x = self.s, self.x
        xv = x.unflatten(0, (s.ep, s.El))  # (ep, El, x_rows, x_cols): a view for any x strides
        comm = _CommPipeline(self.plan, xv, s, self.ep_group, self.tp_group, gate)
        comm.poll()
        stage, compute = (self._stage1, self._tile_shard1) if s.shard_type == 1 else (self._stage0, self._tile_shard0)
        k = 0
        for e0, e1 in self.plan.expert_blocks:
            w = self.math.weight_block(self.weight[e0:e1])
            if self.plan.local_first:
                self._local_block(xv, e0, e1, w, comm)
            while k < len(self.plan.tiles) and self.plan.tiles[k].e1 <= e1:
                tile = self.plan.tiles[k]
                wt = w[tile.e0 - e0:tile.e1 - e0]
                staged = stage(tile, comm.take(k))  # the gathered buffer is freed once staged
                with trace.span("compute", f"tile {k}"):
                    compute(tile, staged, wt)
                k += 1
        empty = x.new_empty(rules.EMPTY_OUTPUT_SHAPE)
        return (self.y1, empty if self.y2 is None else self.y2, empty if self.y3 is None else self.y3)

    # -- pieces ---------------------------------------------------------------------------

    def _bias(self, e0, e1):
        return None if self.bias32 is None else self.bias32[e0:e1].unsqueeze(1)  # (ek, 1, 1, N)

    def _finish(self, acc4, e0, e1, dst, poll=None):
        """acc4 (ek, blocks, rows, N), a product -> epilogue into the index `dst` of y1/y3's 4-D views."""
        y1v, y3v = self._views4(self.y1), self._views4(self.y3)
        epilogue(acc4, self._bias(e0, e1), self.act, y1v[dst], None if y3v is None else y3v[dst], poll)

    def _views4(self, y):
        """y (El, rows, cols) as (El, blocks, block_rows, cols): the row blocks of the contract's layout."""
        if y is None:
            return None
        s = self.s
        if s.shard_type == 1:  # rows = (j, s, c): blocks p = j*tp + s of Ct rows
            return y.view(s.El, s.ep * s.tp, s.x_rows, y.shape[-1])
        return y.view(s.El, s.ep, s.C, y.shape[-1])  # rows = (j, c)

    def _local_block(self, xv, e0, e1, w, comm):
        """shard_type 1: rows of this rank's own block p0 = i*tp + t, from x itself."""
        s = self.s
        p0 = self.i * s.tp + self.t
        own = xv[self.i, e0:e1]  # (ek, Ct, H)
        y2v = self._views4(self.y2)
        for r0 in range(0, s.x_rows, -(-s.x_rows // LOCAL_SLICES)):
            r1 = min(s.x_rows, r0 - (-s.x_rows // LOCAL_SLICES))
            with trace.span("compute", f"local {r0}:{r1}"):
                a = own[:, r0:r1]
                acc = self.math.product(a, w)
                self._finish(acc.unsqueeze(1), e0, e1, (slice(e0, e1), slice(p0, p0 + 1), slice(r0, r1)),
                             comm.poll)
                if y2v is not None:
                    y2v[e0:e1, p0, r0:r1] = a
            comm.poll()

    def _stage1(self, tile, gathered):
        """Every row block but the local one (computed first), contiguous in the contract's block order
        p = j*tp + s' with p0 left out, so the tile is one bmm (each call re-packs w)."""
        s = self.s
        P, p0 = s.ep * s.tp, self.i * s.tp + self.t
        a = gathered.new_empty((tile.experts, P - 1, tile.rows, s.H))
        with trace.span("compute", f"stage {tile.index}"):
            for n, p in enumerate(q for q in range(P) if q != p0):
                j, sp = divmod(p, s.tp)
                a[:, n].copy_(gathered[sp, j])  # gathered[s', j] holds x_(j,s')'s rows
        return a

    def _tile_shard1(self, tile, a, w):
        s = self.s
        ek, cc, P = tile.experts, tile.rows, s.ep * s.tp
        p0 = self.i * s.tp + self.t
        acc4 = self.math.product(a.view(ek, (P - 1) * cc, s.H), w).view(ek, P - 1, cc, s.N)
        y2v = self._views4(self.y2)
        for pa, pb, na in ((0, p0, 0), (p0 + 1, P, p0)):  # output blocks [pa, pb) <- staged [na, ...)
            if pa == pb:
                continue
            if y2v is not None:
                y2v[tile.e0:tile.e1, pa:pb, tile.c0:tile.c1] = a[:, na:na + pb - pa]
            self._finish(acc4[:, na:na + pb - pa], tile.e0, tile.e1,
                         (slice(tile.e0, tile.e1), slice(pa, pb), slice(tile.c0, tile.c1)))

    def _stage0(self, tile, gathered):
        """Rows (j, c) with the tp column slices side by side: the matmul's (rows, H) layout."""
        s = self.s
        a = gathered.new_empty((tile.experts, s.ep, tile.rows, s.H))
        with trace.span("compute", f"stage {tile.index}"):
            # gathered[s', j] holds x_(j,s')'s columns s'*Ht.. of rows (j, c)
            a.view(tile.experts, s.ep, tile.rows, s.tp, s.x_cols).copy_(gathered.permute(2, 1, 3, 0, 4))
        return a

    def _tile_shard0(self, tile, a, w):
        s = self.s
        ek, cc = tile.experts, tile.rows
        if self.y2 is not None:
            self._views4(self.y2)[tile.e0:tile.e1, :, tile.c0:tile.c1] = a
        acc = self.math.product(a.view(ek, s.ep * cc, s.H), w)
        self._finish(acc.view(ek, s.ep, cc, s.N), tile.e0, tile.e1,
                     (slice(tile.e0, tile.e1), slice(None), slice(tile.c0, tile.c1)))
