"""`ExpertMLP`: the expert feed-forward block of an MoE layer on ep x tp ranks, built on both ops.

    fc1: h   = act(AllToAll_ep -> AllGather_tp -> x @ W1 + b1)   npu_alltoall_allgather_bmm
    fc2: out = x' @ W2 -> ReduceScatter_tp -> + b2 -> AllToAll_ep  npu_bmm_reducescatter_alltoall

Rank (i, t) holds, for its El = E/ep local experts g = i*El + e, the column block t of W1
(H x M/tp), of b1, and the row block t of W2 (M/tp x H). b2 is the expert's full output bias
with shard_type 1 (replicated on the tp ranks: `sync_grads()` sums its gradient over tp) and the
column block t with shard_type 0. Token by token, the module equals the dense per-expert MLP
`dense_expert_mlp` applied to the tokens of x: out[g, c] = act(x[g, c] @ W1[g] + b1[g]) @ W2[g] + b2[g].
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.distributed as dist
from torch import nn

from .adjoint_ops import npu_bmm_reducescatter_alltoall
from .contract import activations
from .contract.rules import bias_dtype_for
from .contract.errors import ContractValueError
from .ops import npu_alltoall_allgather_bmm
from .runtime import groups


def init_full(E: int, H: int, M: int, *, seed: int = 0, bias: bool = True, dtype=torch.float32) -> Dict[str, torch.Tensor]:
    """Full (unsharded) parameters: W1 (E, H, M), b1 (E, M), W2 (E, M, H), b2 (E, H)."""
    g = torch.Generator().manual_seed(seed)
    p = {
        "w1": torch.randn(E, H, M, generator=g) / H ** 0.5,
        "w2": torch.randn(E, M, H, generator=g) / M ** 0.5,
    }
    if bias:
        p["b1"] = 0.1 * torch.randn(E, M, generator=g)
        p["b2"] = 0.1 * torch.randn(E, H, generator=g)
    return {k: v.to(dtype if k.startswith("w") else bias_dtype_for(dtype)) for k, v in p.items()}


def dense_expert_mlp(x: torch.Tensor, params: Dict[str, torch.Tensor], act_type="GELU") -> torch.Tensor:
    """Single-process reference: x (E, T, H) tokens per expert -> (E, T, H), computed in x's dtype."""
    act = activations.parse_act_type(act_type)
    h = torch.bmm(x, params["w1"].to(x.dtype))
    if "b1" in params:
        h = h + params["b1"].to(x.dtype).unsqueeze(1)
    h = activations.apply(h, act)
    out = torch.bmm(h, params["w2"].to(x.dtype))
    if "b2" in params:
        out = out + params["b2"].to(x.dtype).unsqueeze(1)
    return out


class ExpertMLP(nn.Module):
    """E experts of an MoE MLP sharded over (ep, tp) ranks; input and output are the ops' x layouts.

    Input x: (E, C/tp, H) with shard_type 1 (tokens split over tp), (E, C, H/tp) with
    shard_type 0 (hidden split over tp); the output has the same shape.
    `transpose_weight=True` stores W1 as (El, M/tp, H) and passes its transpose (the NPU's
    transpose_weight layout).
    """

    def __init__(self, num_experts: int, hidden: int, ffn: int, *, group_ep, group_tp, act_type="GELU",
                 shard_type: int = 1, bias: bool = True, dtype=torch.float32, device=None,
                 transpose_weight: bool = False, seed: int = 0):
        super().__init__()
        op = "ExpertMLP"
        pgs = []
        for arg, group in (("group_ep", group_ep), ("group_tp", group_tp)):
            name = groups.check_arg(op, arg, group)  # a ProcessGroup, a c10d name or an HCCL comm name
            pg = groups.find(group)
            if pg is None:
                raise ContractValueError(op, arg, name, "group.exists",
                                         "must name an existing group this rank belongs to (ProcessGroup, "
                                         "c10d group name or HCCL communicator name)")
            pgs.append(pg)
        pg_ep, pg_tp = pgs
        self.group_ep, self.group_tp = pg_ep.group_name, pg_tp.group_name
        self._pg_tp = pg_tp
        self.ep, self.tp = dist.get_world_size(pg_ep), dist.get_world_size(pg_tp)
        self.i, self.t = dist.get_rank(pg_ep), dist.get_rank(pg_tp)
        sizes = (("num_experts", num_experts, "E.multiple", "ep", self.ep), ("ffn", ffn, "M.multiple", "tp", self.tp))
        if shard_type == 0:
            sizes += (("hidden", hidden, "H.multiple", "tp", self.tp),)
        for arg, value, rid, what, n in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % n:
                raise ContractValueError(op, arg, value, rid, f"must be a positive multiple of {what} = {n}")
        self.E, self.H, self.M = num_experts, hidden, ffn
        self.El, self.Mt = num_experts // self.ep, ffn // self.tp
        self.act_type = activations.parse_act_type(act_type)
        self.shard_type, self.transpose_weight = shard_type, transpose_weight
        self.load_full(init_full(num_experts, hidden, ffn, seed=seed, bias=bias, dtype=dtype), device=device)

    # -- parameters ---------------------------------------------------------------------------

    def shard_of(self, full: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """This rank's blocks of full parameters (see the module doc)."""
        g = slice(self.i * self.El, (self.i + 1) * self.El)
        m = slice(self.t * self.Mt, (self.t + 1) * self.Mt)
        out = {"w1": full["w1"][g, :, m], "w2": full["w2"][g, m, :]}
        if "b1" in full:
            out["b1"] = full["b1"][g, m]
        if "b2" in full:
            Ht = self.H // self.tp
            out["b2"] = full["b2"][g] if self.shard_type == 1 else full["b2"][g, self.t * Ht:(self.t + 1) * Ht]
        return out

    def load_full(self, full: Dict[str, torch.Tensor], device=None):
        s = self.shard_of(full)
        w1 = s["w1"].transpose(1, 2) if self.transpose_weight else s["w1"]
        self.w1 = nn.Parameter(w1.contiguous().to(device))
        self.w2 = nn.Parameter(s["w2"].contiguous().to(device))
        self.b1 = nn.Parameter(s["b1"].contiguous().to(device)) if "b1" in s else None
        self.b2 = nn.Parameter(s["b2"].contiguous().to(device)) if "b2" in s else None

    def fc1_weight(self) -> torch.Tensor:
        """W1 in the op's logical (El, H, M/tp) shape."""
        return self.w1.transpose(1, 2) if self.transpose_weight else self.w1

    def sync_grads(self):
        """Sum the gradient of the tp-replicated b2 (shard_type 1) over the tp group."""
        if self.b2 is not None and self.shard_type == 1 and self.b2.grad is not None:
            dist.all_reduce(self.b2.grad, group=self._pg_tp)

    # -- compute -------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _, _ = npu_alltoall_allgather_bmm(
            x, self.fc1_weight(), bias=self.b1, group_ep=self.group_ep, group_ep_worldsize=self.ep,
            group_tp=self.group_tp, group_tp_worldsize=self.tp, shard_type=self.shard_type, act_type=self.act_type)
        return npu_bmm_reducescatter_alltoall(
            h, self.w2, bias=self.b2, group_ep=self.group_ep, group_ep_worldsize=self.ep, group_tp=self.group_tp,
            group_tp_worldsize=self.tp, shard_type=self.shard_type)

    def extra_repr(self) -> str:
        return (f"E={self.E}, H={self.H}, M={self.M}, ep={self.ep}, tp={self.tp}, rank=(i={self.i}, t={self.t}), "
                f"act={activations.display_name(self.act_type)}, shard_type={self.shard_type}")


def tokens_of_rank(x_full: torch.Tensor, i_t: tuple, ep: int, tp: int, shard_type: int) -> torch.Tensor:
    """Rank (j, s)'s x out of the world's tokens x_full (E, ep*C, H): its rows j*C.. (and, by
    shard_type, its row block s*Ct.. or its column block s*Ht..). Inverse: `assemble_world`."""
    j, s = i_t
    E, rows, H = x_full.shape
    C = rows // ep
    xj = x_full[:, j * C:(j + 1) * C]
    if shard_type == 1:
        Ct = C // tp
        return xj[:, s * Ct:(s + 1) * Ct].contiguous()
    Ht = H // tp
    return xj[:, :, s * Ht:(s + 1) * Ht].contiguous()


def assemble_world(parts, ep: int, tp: int, shard_type: int) -> torch.Tensor:
    """The world's tensor (E, ep*C, H) from every rank's piece (indexed by world rank t*ep + j)."""
    rows = []
    for j in range(ep):
        blocks = [parts[s * ep + j] for s in range(tp)]
        rows.append(torch.cat(blocks, dim=1 if shard_type == 1 else 2))
    return torch.cat(rows, dim=1)


