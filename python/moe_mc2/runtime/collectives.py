"""The few torch.distributed calls the pipelines issue, named once (the API renamed some)."""
from __future__ import annotations

import torch.distributed as dist

# torch 2.13 renamed the *_tensor collectives to *_single; accept both spellings.
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


def all_to_all(out, inp, group, async_op=True):
    """Equal-split AllToAll along dim 0."""
    return dist.all_to_all_single(out, inp, group=group, async_op=async_op)


def all_gather(out, inp, group, async_op=True):
    """out = cat over group ranks of inp, along dim 0."""
    return _all_gather(out, inp, group=group, async_op=async_op)


def reduce_scatter(out, inp, group, async_op=True):
    """out = sum over group ranks of inp's chunk of this rank, along dim 0."""
    return _reduce_scatter(out, inp, op=dist.ReduceOp.SUM, group=group, async_op=async_op)


def wait(work, op: str, arg: str, group, what: str):
    """work.wait(), with a failure (a peer that never arrived within the group's timeout, a
    closed connection) turned into a CollectiveError naming the op, the group argument and the group."""
    try:
        return work.wait()
    except Exception as exc:
        from ..contract.errors import CollectiveError

        raise CollectiveError(op, arg, group.group_name, dist.get_process_group_ranks(group), what,
                              str(exc).strip()) from exc
