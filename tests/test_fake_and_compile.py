"""Shape/dtype inference under FakeTensorMode and torch.compile(fullgraph=True) on a real world."""
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import ShapeEnv

import moe_mc2  # noqa: F401
from compile_cases import compiled_vs_eager
from forward_cases import full_matrix

DT = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def _fake_call(mode, case, ep=2, tp=2, E=8, C=12, H=16, N=10):
    dtype = DT[case["dtype"]]
    with mode:
        x = torch.empty((E, C // tp, H) if case["shard"] == 1 else (E, C, H // tp), dtype=dtype)
        w = torch.empty((E // ep, N, H), dtype=dtype).transpose(1, 2) if case["transposed"] else \
            torch.empty((E // ep, H, N), dtype=dtype)
        bdt = torch.float16 if dtype == torch.float16 else torch.float32
        b = {None: None, 2: torch.empty((E // ep, N), dtype=bdt), 3: torch.empty((E // ep, 1, N), dtype=bdt)}[case["bias"]]
        return moe_mc2.npu_alltoall_allgather_bmm(
            x, w, bias=b, group_ep="ep", group_ep_worldsize=ep, group_tp="tp", group_tp_worldsize=tp,
            shard_type=case["shard"], act_type=case["act"], need_allgather_out=case["y2"],
            need_activation_feature=case["y3"])


def test_fake_inference_over_the_matrix():
    mode = FakeTensorMode()
    cases = full_matrix()
    for case in cases:
        y1, y2, y3 = _fake_call(mode, case)
        want_y3 = case["y3"] and case["act"] != "None"
        assert tuple(y1.shape) == (4, 24, 10), case
        assert tuple(y2.shape) == ((4, 24, 16) if case["y2"] else (0, 0, 0)), case
        assert tuple(y3.shape) == ((4, 24, 10) if want_y3 else (0, 0, 0)), case
        assert y1.dtype == y2.dtype == y3.dtype == DT[case["dtype"]]


def test_fake_inference_with_symbolic_c():
    from torch._dynamo.source import ConstantSource
    from torch.fx.experimental.symbolic_shapes import DimDynamic, StatelessSymbolicContext

    mode = FakeTensorMode(shape_env=ShapeEnv())
    ctx = StatelessSymbolicContext(dynamic_sizes=[DimDynamic.STATIC, DimDynamic.DYNAMIC, DimDynamic.STATIC])
    x = mode.from_tensor(torch.empty(8, 6, 16), source=ConstantSource("x"), symbolic_context=ctx)
    with mode:
        w = torch.empty(4, 16, 10)
        y1, y2, _ = moe_mc2.npu_alltoall_allgather_bmm(x, w, group_ep="ep", group_ep_worldsize=2, group_tp="tp",
                                                       group_tp_worldsize=2, shard_type=1, need_allgather_out=True)
    c = x.shape[1]
    assert isinstance(c, torch.SymInt)
    # rows = ep * C = ep * tp * (C/tp), kept symbolic
    assert isinstance(y1.shape[1], torch.SymInt) and y1.shape[1] == 4 * c and y2.shape[1] == 4 * c
    assert (y1.shape[0], y1.shape[2], y2.shape[2]) == (4, 10, 16)


@pytest.mark.parametrize("shard_type", [0, 1])
def test_compile_fullgraph_equals_eager_with_dynamic_c(world_2x2, shard_type):
    results = world_2x2.run(compiled_vs_eager, shard_type)
    for rank, res in enumerate(results):
        assert res["equal"] == [True, True, True], f"rank {rank}: {res}"
        # one graph for all three C values, holding the op as a single node
        assert (res["graphs"], res["op_nodes"]) == (1, 1), f"rank {rank}: {res}"
