"""torch.compile (inductor, fullgraph, dynamic C) of an MoE expert layer calling the op, on a 2x2 gloo world.

Each rank compiles once (inductor builds C++ on the CPU, so this is the slow test of the file set)
and runs two capacities through the same compiled graph: C is marked dynamic, so no recompile.
"""
from __future__ import annotations

import torch

import moe_mc2

EP, TP, E, H, N = 2, 2, 4, 16, 12


class ExpertLayer(torch.nn.Module):
    """First expert linear of an MoE MLP: dispatch (AllToAll + AllGather) fused with W1, then a scale.

    W1 is stored (E/ep, M/tp, H) and used through a transpose view, the layout the NPU takes as
    transpose_weight=True.
    """

    def __init__(self, group_ep: str, group_tp: str, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.group_ep, self.group_tp = group_ep, group_tp
        self.w1 = torch.nn.Parameter(torch.randn(E // EP, N, H, generator=gen) / H ** 0.5)
        self.b1 = torch.nn.Parameter(torch.randn(E // EP, 1, N, generator=gen))
        self.scale = torch.nn.Parameter(torch.rand(N, generator=gen) + 0.5)

    def forward(self, x):
        y1, y2, y3 = moe_mc2.npu_alltoall_allgather_bmm(
            x, self.w1.transpose(1, 2), bias=self.b1, group_ep=self.group_ep, group_ep_worldsize=EP,
            group_tp=self.group_tp, group_tp_worldsize=TP, shard_type=1, act_type="Silu",
            need_allgather_out=True, need_activation_feature=True)
        return y1 * self.scale + 0.25 * y3, y2


def compile_rank_fn(ctx, capacities):
    """Runs on every rank: eager vs compiled for each capacity C; returns what the test checks."""
    import torch._dynamo
    import torch._inductor.config as inductor_config
    from torch._inductor.compile_fx import compile_fx

    inductor_config.compile_threads = 1  # 4 ranks share 2 cores: no compile worker pools
    torch._dynamo.reset()
    graphs = []

    def inductor_recording(gm, example_inputs):
        graphs.append(gm)
        return compile_fx(gm, example_inputs)

    layer = ExpertLayer(ctx.group_ep, ctx.group_tp, seed=ctx.rank)
    compiled = torch.compile(layer, backend=inductor_recording, fullgraph=True)
    results = []
    with torch.no_grad():
        for C in capacities:
            x = torch.randn(E, C // TP, H, generator=torch.Generator().manual_seed(100 * C + ctx.rank))
            torch._dynamo.mark_dynamic(x, 1)
            want = layer(x)
            got = compiled(x)
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
            results.append(tuple(got[0].shape))
    op = torch.ops.moe_mc2.npu_alltoall_allgather_bmm  # dynamo records the packet, AOT the overload
    op_calls = sum(1 for gm in graphs for n in gm.graph.nodes
                   if n.op == "call_function" and n.target in (op, op.default))
    return {"shapes": results, "graphs": len(graphs), "op_calls": op_calls}


def test_compiled_expert_layer_equals_eager(world_2x2):
    capacities = (8, 12)
    out = world_2x2.run(compile_rank_fn, capacities)
    for r in out:
        assert r["graphs"] == 1  # one compilation served both capacities (C dynamic)
        assert r["op_calls"] == 1  # the op stays one node: what torchair lowers to the fused GE op
        assert r["shapes"] == [(E // EP, EP * C, N) for C in capacities]
