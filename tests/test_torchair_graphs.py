"""Graphs as users build them, in the real torchair: groups in every form, training, dynamic shapes.

The process joins a one-process torch.distributed world of the "fake" backend (rank 0 of 4;
collectives do nothing), so ProcessGroups, c10d group names and ExpertMLP exist as on a cluster.
HCCL is not here: torch_npu's `ProcessGroupHCCL.get_hccl_comm_name` is stood in for by patching
`runtime.groups._hccl_comm_name` (the one place moe_mc2 asks a group for its communicator name),
so every group "has" the communicator `hccl<group_name>@ranks`.
"""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import moe_mc2
from moe_mc2.contract.errors import ContractValueError
from moe_mc2.runtime import groups
from support import torchair_native
from torchair_harness import Graph, attr_value, edge_mismatches, through_torch_compile, undefined_edges

EP, TP = 2, 2


def _comm(group) -> str:
    return f"hccl{group.group_name}@" + ",".join(map(str, dist.get_process_group_ranks(group)))


@pytest.fixture(scope="module")
def world():
    from torch.testing._internal.distributed.fake_pg import FakeStore

    from moe_mc2.launch import build_ep_tp_groups

    assert not dist.is_initialized()
    dist.init_process_group("fake", rank=0, world_size=EP * TP, store=FakeStore())
    try:
        yield build_ep_tp_groups(EP, TP)
    finally:
        dist.destroy_process_group()


@pytest.fixture
def hccl(monkeypatch, world):
    monkeypatch.setattr(groups, "_hccl_comm_name", _comm)
    return world


def _fused(graph, op_type):
    return [op for op in graph.g.op if op.type == op_type]


def _groups_of(node):
    return attr_value(node.attr["group_ep"])[1], attr_value(node.attr["group_tp"])[1]


# ---- group arguments ----------------------------------------------------------------------------

FORMS = ["process_group", "c10d_name", "hccl_name"]


def _group_args(form, ep_g, tp_g):
    if form == "process_group":
        return ep_g, tp_g
    if form == "c10d_name":
        return ep_g.group_name, tp_g.group_name
    return _comm(ep_g), _comm(tp_g)


@pytest.mark.parametrize("form", FORMS)
def test_every_group_form_reaches_ge_as_the_communicator_name(ta, hccl, tmp_path, form):
    ep_g, tp_g = hccl
    g_ep, g_tp = _group_args(form, ep_g, tp_g)

    def fn(x, w1, w2):
        h, _, _ = moe_mc2.npu_alltoall_allgather_bmm(x, w1, group_ep=g_ep, group_ep_worldsize=EP, group_tp=g_tp,
                                                     group_tp_worldsize=TP, shard_type=1, act_type="Relu")
        return moe_mc2.npu_bmm_reducescatter_alltoall(h, w2, group_ep=g_ep, group_ep_worldsize=EP, group_tp=g_tp,
                                                      group_tp_worldsize=TP, shard_type=1)

    args = (torch.randn(4, 3, 8, dtype=torch.float16), torch.randn(2, 8, 5, dtype=torch.float16),
            torch.randn(2, 5, 8, dtype=torch.float16))
    cap = through_torch_compile(ta, fn, args, tmp_path)
    assert isinstance(cap.error, torchair_native.NeedsNpu)
    graph = Graph(cap.loaded[0].graph)
    nodes = _fused(graph, "AlltoAllAllGatherBatchMatMul") + _fused(graph, "BatchMatMulReduceScatterAlltoAll")
    assert len(nodes) == 2
    for node in nodes:
        assert _groups_of(node) == (_comm(ep_g), _comm(tp_g))


@pytest.mark.parametrize("bad,rule", [("hccl_no_such_communicator", "group.exists"), ("world", "group.size")])
def test_a_group_the_eager_op_rejects_fails_the_compile(ta, hccl, tmp_path, bad, rule):
    ep_g, tp_g = hccl
    name = dist.group.WORLD.group_name if bad == "world" else bad  # WORLD has 4 ranks, not ep = 2

    def fn(x, w):
        return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(x, w, group_ep=name, group_ep_worldsize=EP,
                                                            group_tp=tp_g.group_name, group_tp_worldsize=TP,
                                                            shard_type=1)

    args = (torch.randn(4, 3, 8, dtype=torch.bfloat16), torch.randn(2, 8, 5, dtype=torch.bfloat16))
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed) as info:
        through_torch_compile(ta, fn, args, tmp_path)
    err = info.value.inner_exception
    assert isinstance(err, ContractValueError)
    assert (err.op, err.arg, err.value, err.rule_id) == ("npu_alltoall_allgather_bmm", "group_ep", name, rule)
    assert torchair_native.LOADED == []


# ---- training -----------------------------------------------------------------------------------

def _mlp(world, *, transpose_weight, act="GELU"):
    ep_g, tp_g = world
    return moe_mc2.ExpertMLP(4, 16, 24, group_ep=ep_g, group_tp=tp_g, act_type=act, shard_type=1,
                             dtype=torch.bfloat16, transpose_weight=transpose_weight)


def _known(graph) -> set:
    """Op types torchair's GE API declares, plus the two fused ops the stand-in knows."""
    from torchair._ge_concrete_graph import ge_apis

    return {op.type for op in graph.g.op if not (hasattr(ge_apis, op.type) or torchair_native.ir_def(op.type))}


FUSED = {"AlltoAllAllGatherBatchMatMul", "BatchMatMulReduceScatterAlltoAll"}


def _check_graph(built, loaded):
    assert undefined_edges(built, only=FUSED) == []
    assert edge_mismatches(loaded) == []
    assert _known(loaded) == set(), "op types neither torchair's nor registered"
    assert "TransposeD" not in {op.type for op in built.op}


@pytest.fixture
def backward_eagerly():
    # aot autograd compiles the backward at the first backward call; compile it with the forward
    with torch._functorch.config.patch(force_non_lazy_backward_lowering=True):
        yield


@pytest.mark.parametrize("transpose_weight", [False, True])
def test_expert_mlp_training_step_lowers_completely(ta, hccl, tmp_path, backward_eagerly, transpose_weight):
    ep_g, tp_g = hccl
    mlp = _mlp(hccl, transpose_weight=transpose_weight)
    x = torch.randn(4, 6, 16, dtype=torch.bfloat16, requires_grad=True)

    def step(out):  # the forward graph "ran" (zeros); the backward graph is loaded when backward runs
        out.float().pow(2).sum().backward()

    cap = through_torch_compile(ta, mlp, (x,), tmp_path, then=step, zeros=True)
    assert cap.error is None, cap.error
    assert len(cap.built) == 2 and len(cap.loaded) == 2  # forward and backward, both handed to GE
    fw, bw = (Graph(g.graph) for g in cap.loaded)
    for built, loaded in zip(cap.built, (fw, bw)):
        _check_graph(built, loaded)
    comms = (_comm(ep_g), _comm(tp_g))
    # forward: fc1 -> the fused forward op, fc2 -> CANN's adjoint; backward: the reverse routes
    for graph in (fw, bw):
        (fwd,) = _fused(graph, "AlltoAllAllGatherBatchMatMul")
        (adj,) = _fused(graph, "BatchMatMulReduceScatterAlltoAll")
        assert _groups_of(fwd) == comms and _groups_of(adj) == comms
        for node in (fwd, adj):  # every weight read as stored: no Transpose feeds a fused node
            w_src, _ = graph.producer(node.input[1])
            assert w_src.type == "Data", (node.type, w_src.type)
    (fc1,) = _fused(fw, "AlltoAllAllGatherBatchMatMul")
    assert attr_value(fc1.attr["transpose_weight"]) == ("b", transpose_weight)
    assert attr_value(fc1.attr["act_type"]) == ("i", 1)
    w1_shape = [2, 12, 16] if transpose_weight else [2, 16, 12]  # W1 as stored: (El, M/tp, H) or (El, H, M/tp)
    assert list(fw.producer(fc1.input[1])[0].output_desc[0].shape.dim) == w1_shape
    # fc1's grad_x: the adjoint's logical weight (El, M/tp, H) is the transpose of fc1's logical weight;
    # the node reads fc1's logical weight (El, H, M/tp), a graph input of the backward, transposed
    (dx1,) = _fused(bw, "BatchMatMulReduceScatterAlltoAll")
    assert attr_value(dx1.attr["transpose_weight"]) == ("b", True)
    assert list(bw.producer(dx1.input[1])[0].output_desc[0].shape.dim) == [2, 16, 12]
    # gradients came back for every parameter (zeros: GE did not run)
    assert all(p.grad is not None for p in mlp.parameters()) and x.grad is not None


def test_expert_mlp_dynamic_token_count_lowers(ta, hccl, tmp_path, backward_eagerly):
    mlp = _mlp(hccl, transpose_weight=True, act="Silu")
    x = torch.randn(4, 6, 16, dtype=torch.bfloat16, requires_grad=True)
    cap = through_torch_compile(ta, mlp, (x,), tmp_path, dynamic=True)
    # both graphs converted at compile time; the forward was loaded, its run stops at GE
    assert isinstance(cap.error, torchair_native.NeedsNpu)
    assert len(cap.built) == 2 and len(cap.loaded) == 1
    fw = Graph(cap.loaded[0].graph)
    _check_graph(cap.built[0], fw)
    assert undefined_edges(cap.built[1], only=FUSED) == []
    (fc1,) = _fused(fw, "AlltoAllAllGatherBatchMatMul")
    x_data, _ = fw.producer(fc1.input[0])
    assert x_data.type == "Data" and x_data.output_desc[0].shape.dim[1] == -1  # the token dim of x is symbolic
    assert cap.loaded[0].output_shapes[0][1] == -1  # the output's token dim too
    for built in cap.built:
        types = [op.type for op in built.op]
        assert types.count("AlltoAllAllGatherBatchMatMul") == 1 and types.count("BatchMatMulReduceScatterAlltoAll") == 1
