"""torch.compile of the op on the ranks of a world (module-level: ranks import it)."""
from __future__ import annotations

import torch

import moe_mc2


def compiled_vs_eager(ctx, shard_type):
    torch._dynamo.reset()
    ep, tp = ctx.ep, ctx.tp
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def layer(x, w, b):
        y1, y2, y3 = moe_mc2.npu_alltoall_allgather_bmm(
            x, w, bias=b, group_ep=ctx.group_ep, group_ep_worldsize=ep, group_tp=ctx.group_tp,
            group_tp_worldsize=tp, shard_type=shard_type, act_type="silu", need_allgather_out=True,
            need_activation_feature=True)
        return y1 * 2, y2, y3

    compiled = torch.compile(layer, backend=backend, fullgraph=True, dynamic=None)
    g = torch.Generator().manual_seed(ctx.rank)
    w = torch.randn(2, 16, 6, generator=g)
    b = torch.randn(2, 6, generator=g)
    results = []
    for rows in (3, 5, 7):  # dim 1 of x varies: one dynamic graph, no recompile per C
        x = torch.randn(2 * ep, rows, 16 if shard_type == 1 else 16 // tp, generator=g)
        torch._dynamo.mark_dynamic(x, 1)
        eager = layer(x, w, b)
        comp = compiled(x, w, b)
        results.append(all(torch.equal(a, c) for a, c in zip(eager, comp)))
    ops = [n for gm in graphs for n in gm.graph.nodes
           if n.op == "call_function" and "npu_alltoall_allgather_bmm" in str(n.target)]
    return {"equal": results, "graphs": len(graphs), "op_nodes": len(ops)}
