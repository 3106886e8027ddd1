"""Single-process reference over a whole simulated ep x tp world, straight from the
index formulas of docs/contract.md.

Rank (i, t) has world rank r = t * ep + i. Inputs are lists indexed by world rank; the result
is every rank's (y1, y2, y3). Arithmetic is float64 with one final rounding to x's dtype, so
this is the ground truth the runtime, the C++ twin and the msopst goldens are checked against.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from .contract import activations
from .contract.rules import EMPTY_OUTPUT_SHAPE


def world_rank(i: int, t: int, ep: int) -> int:
    return t * ep + i


def gathered_input(xs: Sequence[torch.Tensor], i: int, ep: int, tp: int, shard_type: int) -> torch.Tensor:
    """y2 of rank (i, *): the AllToAll + AllGather result, by the contract's index formula."""
    x0 = xs[0]
    E, d1, d2 = x0.shape
    El = E // ep
    C = d1 * tp if shard_type == 1 else d1
    H = d2 if shard_type == 1 else d2 * tp
    y2 = x0.new_empty((El, ep * C, H))
    for j in range(ep):
        for s in range(tp):
            block = xs[world_rank(j, s, ep)][i * El:(i + 1) * El]
            if shard_type == 1:  # y2[e, j*C + s*Ct + c, h] = x_(j,s)[i*El + e, c, h]
                y2[:, j * C + s * d1: j * C + (s + 1) * d1, :] = block
            else:  # y2[e, j*C + c, s*Ht + k] = x_(j,s)[i*El + e, c, k]
                y2[:, j * C:(j + 1) * C, s * d2:(s + 1) * d2] = block
    return y2


def forward(
    xs: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    biases: Optional[Sequence[Optional[torch.Tensor]]],
    *,
    ep: int,
    tp: int,
    shard_type: int = 0,
    act_type: int = 0,
    need_allgather_out: bool = False,
    need_activation_feature: bool = False,
    ranks: Optional[Sequence[int]] = None,
    rounded: bool = True,
) -> List[tuple]:
    """Every rank's (y1, y2, y3) of npu_alltoall_allgather_bmm; outputs not produced are empty.

    `ranks` restricts the work to those world ranks (the list is then indexed like `ranks`);
    `rounded=False` returns y1/y3 unrounded in float64 (for tolerance checks).
    """
    act_type = activations.parse_act_type(act_type)
    out = []
    for r in (range(ep * tp) if ranks is None else ranks):
        i = r % ep
        dtype = xs[r].dtype if rounded else torch.float64
        y2 = gathered_input(xs, i, ep, tp, shard_type)
        y3 = torch.bmm(y2.double(), weights[r].double())
        bias = biases[r] if biases is not None else None
        if bias is not None:
            y3 = y3 + bias.double().reshape(bias.shape[0], 1, bias.shape[-1])
        y1 = activations.apply(y3, act_type)
        empty = xs[r].new_empty(EMPTY_OUTPUT_SHAPE)
        out.append((
            y1.to(dtype),
            y2 if need_allgather_out else empty,
            y3.to(dtype) if (need_activation_feature and act_type != 0) else empty,
        ))
    return out


def magnitude(xs, weights, biases, *, ep: int, tp: int, shard_type: int = 0, rank: int) -> torch.Tensor:
    """|y2| @ |weight| + |bias| of one rank, in float64: the scale of the rounding errors a
    correct fp32-accumulating implementation may make in y3 (used for tolerances)."""
    i = rank % ep
    y2 = gathered_input(xs, i, ep, tp, shard_type).double().abs()
    out = torch.bmm(y2, weights[rank].double().abs())
    bias = biases[rank] if biases is not None else None
    if bias is not None:
        out = out + bias.double().abs().reshape(bias.shape[0], 1, bias.shape[-1])
    return out
