"""Single-process reference of `npu_bmm_reducescatter_alltoall` over a whole ep x tp world.

Straight from the index form of docs/contract.md, independent of the runtime: rank (i, t) has world rank
r = t * ep + i; inputs are lists indexed by world rank; float64 arithmetic, one rounding to x's
dtype at the end.

  T_(i,t') = bmm(x_(i,t'), weight_(i,t'))
  shard_type 1: out_(j,s)[i*El + e, c, h] = sum_t' T_(i,t')[e, j*C + s*Ct + c, h] + bias_(i,s)[e, h]
  shard_type 0: out_(j,s)[i*El + e, c, k] = sum_t' T_(i,t')[e, j*C + c, s*Ht + k] + bias_(i,s)[e, k]
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch


def world_rank(i: int, t: int, ep: int) -> int:
    return t * ep + i


def adjoint(
    xs: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    biases: Optional[Sequence[Optional[torch.Tensor]]] = None,
    *,
    ep: int,
    tp: int,
    shard_type: int = 0,
    dtype: Optional[torch.dtype] = None,
) -> List[torch.Tensor]:
    """Every rank's `out`; `dtype=None` rounds to x's dtype, torch.float64 keeps it exact."""
    El, rows, _ = xs[0].shape
    C = rows // ep
    H = weights[0].shape[2]
    E = El * ep
    T = [torch.bmm(xs[r].double(), weights[r].double()) for r in range(ep * tp)]
    outs = []
    for r in range(ep * tp):
        j, s = r % ep, r // ep
        if shard_type == 1:
            Ct = C // tp
            out = torch.zeros((E, Ct, H), dtype=torch.float64)
        else:
            Ht = H // tp
            out = torch.zeros((E, C, Ht), dtype=torch.float64)
        for i in range(ep):
            for e in range(El):
                acc = 0
                for t2 in range(tp):
                    Tm = T[world_rank(i, t2, ep)]
                    if shard_type == 1:
                        acc = acc + Tm[e, j * C + s * Ct: j * C + (s + 1) * Ct, :]
                    else:
                        acc = acc + Tm[e, j * C:(j + 1) * C, s * Ht:(s + 1) * Ht]
                b = biases[world_rank(i, s, ep)] if biases is not None else None
                if b is not None:
                    acc = acc + b.double().reshape(El, -1)[e]
                out[i * El + e] = acc
        outs.append(out)
    want = [dtype or xs[r].dtype for r in range(ep * tp)]
    return [o.to(w) for o, w in zip(outs, want)]
