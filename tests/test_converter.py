"""The torchair converters inside the real torchair (the torch-npu wheel's Python tree).

Only torchair's three native modules are stood in (tests/support/torchair_native.py: op
definitions from op_proto's REG_OPs and CANN's BatchMatMulReduceScatterAlltoAll, the graph load
recorded). Every argument combination (shard type x act x bias none/2-D/3-D x dtype x transposed
weight x y2 x y3) is lowered twice, in one graph per route - through
`torch.compile(backend=torchair.get_npu_backend())` and through torchair's FX compiler on a
make_fx graph - up to GE's load; each combination's node is then checked in both loaded graphs.
Groups are HCCL communicator names here, as the seed passes them (no torch.distributed: GE gets
them as given). Expected values are restated from the contract (docs/contract.md) and CANN's prototype, not computed by the
converter.
"""
from __future__ import annotations

import inspect
import itertools
import sys

import pytest
import torch

from moe_mc2 import integration
from moe_mc2.contract.errors import ContractTypeError, ContractValueError
from moe_mc2.contract.names import ADJOINT_GE_OP_TYPE, GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OUTPUTS
from moe_mc2.integration import torchair as conv
from support import real_torchair, torchair_native
from torchair_harness import (ATTR_FIELD, DT_NAMES, Graph, attr_value, dt_name, edge_mismatches,
                              through_fx_compiler, through_torch_compile, undefined_edges)

# HCCL communicator names as torch_npu makes them (get_hccl_comm_name: ip%interface_port_rank_time)
COMM_EP = "10.20.0.7%enp189s0f0_60000_0_1732531200123456"
COMM_TP = "10.20.0.7%enp189s0f0_60001_0_1732531200123789"
E, C, H, N, EP, TP = 4, 6, 8, 5, 2, 2
EL = E // EP
DTYPES = (torch.float16, torch.bfloat16)
BIAS_DTYPE = {torch.float16: torch.float16, torch.bfloat16: torch.float32}  # the contract / CANN's aclnn docs


def _dt(dtype):
    return str(dtype).replace("torch.", "")


# ---- the forward op's argument matrix -----------------------------------------------------------

COMBOS = list(itertools.product((0, 1), range(5), (None, 2, 3), DTYPES, (False, True), (False, True), (False, True)))


def _id(c):
    shard, act, bias, dtype, tr, y2, y3 = c
    return f"s{shard}-a{act}-b{bias or 0}-{_dt(dtype)}-{'T' if tr else 'N'}-y2{int(y2)}-y3{int(y3)}"


def _x_shape(shard):
    return (E, C // TP, H) if shard == 1 else (E, C, H // TP)


# every graph input: key -> (shape, dtype); the Data ops are told apart by shape and dtype
INPUTS = {}
for _d in DTYPES:
    for _s in (0, 1):
        INPUTS[("x", _s, _d)] = (_x_shape(_s), _d)
    INPUTS[("w", _d, "logical")] = ((EL, H, N), _d)
    INPUTS[("w", _d, "stored")] = ((EL, N, H), _d)  # (El, M/tp, H): its transpose(1, 2) is the weight
    INPUTS[("b", _d, 2)] = ((EL, N), BIAS_DTYPE[_d])
    INPUTS[("b", _d, 3)] = ((EL, 1, N), BIAS_DTYPE[_d])
KEYS = list(INPUTS)


def _matrix_fn(*tensors):
    t = dict(zip(KEYS, tensors))
    outs = []
    for shard, act, bias, dtype, transposed, y2, y3 in COMBOS:
        w = t[("w", dtype, "stored")].transpose(1, 2) if transposed else t[("w", dtype, "logical")]
        outs += torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            t[("x", shard, dtype)], w, bias=None if bias is None else t[("b", dtype, bias)],
            group_ep=COMM_EP, group_ep_worldsize=EP, group_tp=COMM_TP, group_tp_worldsize=TP, shard_type=shard,
            act_type=act, need_allgather_out=y2, need_activation_feature=y3)
    return outs


def _matrix_inputs():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g).to(dtype) for shape, dtype in INPUTS.values()]


@pytest.fixture(scope="module")
def matrix(ta, tmp_path_factory):
    """{route: Captured} for the whole matrix in one graph per route."""
    args = _matrix_inputs()
    got = {
        "torch.compile": through_torch_compile(ta, _matrix_fn, args, tmp_path_factory.mktemp("dyn")),
        "fx compiler": through_fx_compiler(ta, _matrix_fn, args, tmp_path_factory.mktemp("fx")),
    }
    for route, cap in got.items():
        assert isinstance(cap.error, torchair_native.NeedsNpu), (route, cap.error)  # stopped at GE, as planned
        assert len(cap.loaded) == 1 and len(cap.built) == 1, route
        cap.index = Graph(cap.loaded[0].graph)
    return got


@pytest.fixture(scope="module")
def reg_op():
    ir = torchair_native.ir_def(GE_OP_TYPE)  # op_proto's REG_OP, parsed
    assert ir is not None
    return ir


def _check_node(graph: Graph, i: int, combo, reg_op):
    shard, act, bias, dtype, transposed, y2, y3 = combo
    out = graph.net_output()
    srcs = list(out.input[3 * i:3 * i + 3])
    node, _ = graph.producer(srcs[0])
    assert [graph.producer(s) for s in srcs] == [(node, 0), (node, 1), (node, 2)]
    assert node.type == "AlltoAllAllGatherBatchMatMul"
    # inputs: names in REG_OP order (GE binds by index), each fed by the right graph input
    assert [d.name for d in node.input_desc] == ["x", "weight", "bias"]
    fed = [graph.producer(s)[0] for s in node.input]
    assert fed[0].type == "Data" and graph.data_key(fed[0], INPUTS) == ("x", shard, dtype)
    # a transposed weight: the stored (El, M/tp, H) tensor itself goes in, with transpose_weight
    assert fed[1].type == "Data" and graph.data_key(fed[1], INPUTS) == ("w", dtype, "stored" if transposed else "logical")
    if bias is None:
        assert node.input[2] == "" and "_is_unfed_optional" in node.input_desc[2].attr
    else:
        assert fed[2].type == "Data" and graph.data_key(fed[2], INPUTS) == ("b", dtype, bias)
    # attributes: every REG_OP attribute, in the proto field of its declared type, with its value
    want = {
        "group_ep": ("s", COMM_EP), "group_tp": ("s", COMM_TP),  # HCCL names go through untouched
        "ep_world_size": ("i", EP), "tp_world_size": ("i", TP),
        "x_shard_type": ("i", shard), "act_type": ("i", act),
        "transpose_weight": ("b", transposed), "output_y2_flag": ("b", y2),
        "output_y3_flag": ("b", y3 and act != 0),  # the contract: y3 only with an activation
    }
    got = {k: attr_value(v) for k, v in node.attr.items() if not k.startswith("_")}
    assert got == want
    assert {name: ATTR_FIELD[kind] for name, kind, _, _ in reg_op["attrs"]} == {k: f for k, (f, _) in want.items()}
    # dtypes: defined, consistent along every edge, in the REG_OP's list, outputs in x's dtype
    lists = {n: set(t) for n, _, t in reg_op["inputs"] + reg_op["outputs"]}
    for k, desc in enumerate(node.input_desc[:3 if bias is not None else 2]):
        assert dt_name(desc.dtype) in lists[desc.name], (desc.name, dt_name(desc.dtype))
    assert dt_name(node.input_desc[0].dtype) == DT_NAMES[dtype]
    if bias is not None:
        assert dt_name(node.input_desc[2].dtype) == DT_NAMES[BIAS_DTYPE[dtype]]
    assert [d.name for d in node.output_desc] == ["y1", "y2", "y3"]
    for desc in node.output_desc:
        assert dt_name(desc.dtype) == DT_NAMES[dtype] and dt_name(desc.dtype) in lists[desc.name]
    return node


@pytest.mark.parametrize("i", range(len(COMBOS)), ids=[_id(c) for c in COMBOS])
def test_every_combination_lowers_to_the_fused_node(matrix, reg_op, i):
    for route, cap in matrix.items():
        graph = cap.index
        try:
            _check_node(graph, i, COMBOS[i], reg_op)
        except AssertionError as exc:
            raise AssertionError(f"[{route}] {exc}") from exc


@pytest.mark.parametrize("route", ["torch.compile", "fx compiler"])
def test_matrix_graph_as_a_whole(matrix, route):
    cap = matrix[route]
    built, loaded = cap.built[0], cap.index
    # nothing but the inputs, the fused nodes, torchair's own view materialisation and the output
    types = {op.type for op in loaded.g.op}
    assert types <= {"Data", "Const", "Transpose", "AlltoAllAllGatherBatchMatMul", "NetOutput"}, types
    assert len(loaded.of_type("AlltoAllAllGatherBatchMatMul")) == len(COMBOS)
    assert "TransposeD" not in {op.type for op in built.op}
    # every dtype defined as the interpreter built the graph (before torchair fills DT_FLOAT in)
    assert undefined_edges(built) == []
    assert edge_mismatches(loaded) == []
    # the Transposes torchair made for the views feed nothing any more: GE's PrunePass drops them
    for t in loaded.of_type("Transpose"):
        assert loaded.consumers.get(f"{t.name}:0", []) == [], t.name
    # the graph torchair loads returns what the function returned: 3 outputs per call, in order
    assert len(loaded.net_output().input) == 3 * len(COMBOS)
    shapes = cap.loaded[0].output_shapes
    for i, (shard, act, bias, dtype, tr, y2, y3) in enumerate(COMBOS):
        rows = EP * C
        assert shapes[3 * i] == [EL, rows, N]
        assert shapes[3 * i + 1] == ([EL, rows, H] if y2 else [0, 0, 0])  # not produced: [0, 0, 0]
        assert shapes[3 * i + 2] == ([EL, rows, N] if (y3 and act) else [0, 0, 0])


# ---- which producers of the weight fold into transpose_weight ------------------------------------

def _weight_case(make_weight, stored_shape, also_use_view=False):
    def fn(x, w_stored):
        w = make_weight(w_stored)
        y1, y2, y3 = torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            x, w, group_ep=COMM_EP, group_ep_worldsize=EP, group_tp=COMM_TP, group_tp_worldsize=TP, shard_type=1)
        return (y1, w * 2) if also_use_view else (y1,)

    return fn, (torch.randn(E, C // TP, H, dtype=torch.float16), torch.randn(stored_shape, dtype=torch.float16))


@pytest.mark.parametrize("name,make_weight,stored_shape,folds", [
    ("transpose(1, 2)", lambda w: w.transpose(1, 2), (EL, N, H), True),
    ("transpose(-1, -2)", lambda w: w.transpose(-1, -2), (EL, N, H), True),
    ("permute(0, 2, 1)", lambda w: w.permute(0, 2, 1), (EL, N, H), True),
    ("permute(1, 0, 2)", lambda w: w.permute(1, 0, 2), (H, EL, N), False),  # a Transpose, other dims
    ("w * 1", lambda w: w * 1, (EL, H, N), False),
], ids=lambda v: v if isinstance(v, str) else "")
def test_only_a_last_two_dims_transpose_folds(ta, tmp_path, name, make_weight, stored_shape, folds):
    fn, args = _weight_case(make_weight, stored_shape)
    cap = through_torch_compile(ta, fn, args, tmp_path)
    graph = Graph(cap.loaded[0].graph)
    (node,) = graph.of_type("AlltoAllAllGatherBatchMatMul")
    src, _ = graph.producer(node.input[1])
    assert attr_value(node.attr["transpose_weight"]) == ("b", folds)
    if folds:  # the stored tensor itself, the Transpose left without readers
        assert src.type == "Data" and list(src.output_desc[0].shape.dim) == list(stored_shape)
        assert all(graph.consumers.get(f"{t.name}:0", []) == [] for t in graph.of_type("Transpose"))
    else:  # what torchair made of the view, as it is
        assert src.type != "Data"


def test_a_transpose_with_other_readers_stays_for_them(ta, tmp_path):
    fn, args = _weight_case(lambda w: w.transpose(1, 2), (EL, N, H), also_use_view=True)
    cap = through_torch_compile(ta, fn, args, tmp_path)
    graph = Graph(cap.loaded[0].graph)
    (node,) = graph.of_type("AlltoAllAllGatherBatchMatMul")
    assert graph.producer(node.input[1])[0].type == "Data"
    assert attr_value(node.attr["transpose_weight"]) == ("b", True)
    (t,) = graph.of_type("Transpose")
    assert [op.type for op, _ in graph.consumers[f"{t.name}:0"]] == ["Muls"]  # w_view * 2


# ---- the adjoint op: CANN's built-in BatchMatMulReduceScatterAlltoAll ---------------------------

ADJ_COMBOS = list(itertools.product((0, 1), (None, 2, 3), DTYPES, (False, True)))


def _adj_inputs():
    # x (El, ep*C, M/tp); weight logical (El, M/tp, H), stored (El, H, M/tp) when transposed
    keys = {}
    for d in DTYPES:
        keys[("x", d)] = ((EL, EP * C, N), d)
        keys[("w", d, "logical")] = ((EL, N, H), d)
        keys[("w", d, "stored")] = ((EL, H, N), d)
        for shard in (0, 1):
            hb = H if shard == 1 else H // TP
            keys[("b", d, shard, 2)] = ((EL, hb), BIAS_DTYPE[d])
            keys[("b", d, shard, 3)] = ((EL, 1, hb), BIAS_DTYPE[d])
    return keys


ADJ_INPUTS = _adj_inputs()


def _adj_fn(*tensors):
    t = dict(zip(ADJ_INPUTS, tensors))
    outs = []
    for shard, bias, dtype, transposed in ADJ_COMBOS:
        w = t[("w", dtype, "stored")].transpose(1, 2) if transposed else t[("w", dtype, "logical")]
        outs.append(torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall(
            t[("x", dtype)], w, bias=None if bias is None else t[("b", dtype, shard, bias)], group_ep=COMM_EP,
            group_ep_worldsize=EP, group_tp=COMM_TP, group_tp_worldsize=TP, shard_type=shard))
    return outs


@pytest.fixture(scope="module")
def adjoint(ta, tmp_path_factory):
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(s, generator=g).to(d) for s, d in ADJ_INPUTS.values()]
    cap = through_torch_compile(ta, _adj_fn, args, tmp_path_factory.mktemp("adj"))
    assert isinstance(cap.error, torchair_native.NeedsNpu) and len(cap.loaded) == 1
    return cap


@pytest.mark.parametrize("i", range(len(ADJ_COMBOS)),
                         ids=[f"s{s}-b{b or 0}-{_dt(d)}-{'T' if t else 'N'}" for s, b, d, t in ADJ_COMBOS])
def test_adjoint_lowers_to_cann_builtin(adjoint, i):
    shard, bias, dtype, transposed = ADJ_COMBOS[i]
    graph = Graph(adjoint.loaded[0].graph)
    node, idx = graph.producer(graph.net_output().input[i])
    assert node.type == "BatchMatMulReduceScatterAlltoAll" and idx == 0
    assert [d.name for d in node.input_desc] == ["x", "weight", "bias"]
    assert [d.name for d in node.output_desc] == ["y"]
    fed = [graph.producer(s)[0] for s in node.input]
    assert graph.data_key(fed[0], ADJ_INPUTS) == ("x", dtype)
    assert graph.data_key(fed[1], ADJ_INPUTS) == ("w", dtype, "stored" if transposed else "logical")
    if bias is None:
        assert node.input[2] == ""
    else:
        assert graph.data_key(fed[2], ADJ_INPUTS) == ("b", dtype, shard, bias)
    got = {k: attr_value(v) for k, v in node.attr.items() if not k.startswith("_")}
    assert got == {"group_ep": ("s", COMM_EP), "group_tp": ("s", COMM_TP), "ep_world_size": ("i", EP),
                   "tp_world_size": ("i", TP), "y_shard_type": ("i", shard), "transpose_weight": ("b", transposed)}
    cann = torchair_native.adjoint_ir()
    lists = {n: set(t) for n, _, t in cann["inputs"] + cann["outputs"]}
    assert dt_name(node.output_desc[0].dtype) == DT_NAMES[dtype] and dt_name(node.output_desc[0].dtype) in lists["y"]
    for desc in node.input_desc[:3 if bias is not None else 2]:
        assert dt_name(desc.dtype) in lists[desc.name]
    assert undefined_edges(adjoint.built[0]) == [] and edge_mismatches(graph) == []


def test_adjoint_definition_is_cann_builtin():
    # CANN's REG_OP(BatchMatMulReduceScatterAlltoAll), restated: what the stand-in answers torchair with
    ir = torchair_native.adjoint_ir()
    assert ADJOINT_GE_OP_TYPE == "BatchMatMulReduceScatterAlltoAll"
    assert [(n, k) for n, k, _ in ir["inputs"]] == [("x", "INPUT"), ("weight", "INPUT"), ("bias", "OPTIONAL_INPUT")]
    assert [(n, k) for n, k, _ in ir["outputs"]] == [("y", "OUTPUT")]
    assert ir["attrs"] == [("group_ep", "str", True, None), ("group_tp", "str", True, None),
                           ("ep_world_size", "int", True, None), ("tp_world_size", "int", True, None),
                           ("y_shard_type", "int", False, 0), ("transpose_weight", "bool", False, False)]


# ---- bad input raises the eager op's error while torchair compiles ------------------------------

def _one_call(x_dtype, b_dtype, **kw):
    args = dict(group_ep=COMM_EP, group_ep_worldsize=EP, group_tp=COMM_TP, group_tp_worldsize=TP, shard_type=1)
    args.update(kw)

    def fn(x, w, b):
        return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(x, w, bias=b, **args)

    x = torch.randn(E, C // TP, H).to(x_dtype)
    w = torch.randn(EL, H, N).to(x_dtype)
    b = None if b_dtype is None else torch.randn(EL, N).to(b_dtype)
    return fn, (x, w, b)


def test_float32_x_is_rejected_by_the_converter(ta, tmp_path):
    # float32 passes the fake kernel (the portable runtime takes it); the NPU does not
    fn, args = _one_call(torch.float32, torch.float32)
    with pytest.raises(torch._dynamo.exc.BackendCompilerFailed) as info:
        through_torch_compile(ta, fn, args, tmp_path)
    err = info.value.inner_exception
    assert isinstance(err, ContractTypeError)
    assert (err.op, err.arg, err.value, err.rule_id) == ("npu_alltoall_allgather_bmm", "x", "float32", "x.dtype")
    assert "float16/bfloat16 on the NPU" in str(err)
    assert torchair_native.LOADED == []  # nothing reached GE


@pytest.mark.parametrize("lower,op", [(conv.lower, "npu_alltoall_allgather_bmm"),
                                      (conv.lower_adjoint, "npu_bmm_reducescatter_alltoall")])
@pytest.mark.parametrize("ep,tp,arg,rule", [(1, 2, "group_ep_worldsize", "ep.world_size"),
                                            (2, 1, "group_tp_worldsize", "tp.world_size")])
def test_a_one_rank_group_is_refused_in_graph_mode(ta, lower, op, ep, tp, arg, rule):
    # 1 is valid on the portable runtime (the fake kernel accepts it); CANN's kernel takes {2, 4, 8, 16}
    from torchair.ge._ge_graph import GeGraph

    with GeGraph(name="direct") as graph:
        x = _ge_data(ta, 0, torch.float16, (4, 3, 8))
        w = _ge_data(ta, 1, torch.float16, (4 // ep if op == "npu_alltoall_allgather_bmm" else 4, 8, 5))
        with pytest.raises(ContractValueError) as info:
            lower(ta.ge, x, w, None, group_ep=COMM_EP, group_ep_worldsize=ep, group_tp=COMM_TP,
                  group_tp_worldsize=tp)
        assert [o.type for o in graph.op] == ["Data", "Data"]  # nothing emitted
    assert (info.value.op, info.value.arg, info.value.value, info.value.rule_id) == (op, arg, 1, rule)
    assert "on the NPU and in graph mode" in str(info.value)


@pytest.mark.parametrize("x_dtype,b_dtype,want", [
    (torch.float16, torch.float32, "must be float16 when x is float16"),
    (torch.bfloat16, torch.bfloat16, "must be float32 when x is bfloat16"),
    (torch.bfloat16, torch.float16, "must be float32 when x is bfloat16"),
])
def test_wrong_bias_dtype_fails_the_compile(ta, tmp_path, x_dtype, b_dtype, want):
    # dynamo runs the op's fake kernel first: the eager op's rule fires there, dynamo reports its text
    fn, args = _one_call(x_dtype, b_dtype)
    with pytest.raises(torch._dynamo.exc.TorchRuntimeError) as info:
        through_torch_compile(ta, fn, args, tmp_path)
    assert f"bias='{_dt(b_dtype)}' breaks rule [bias.dtype]: {want}" in str(info.value)
    assert torchair_native.LOADED == []


def _ge_data(ta, index, dtype, shape):
    from torchair.ge._ge_graph import Data

    from torchair.ge._ge_graph import torch_type_to_ge_type

    t = Data(index=index, dtype=torch_type_to_ge_type(dtype), shape=list(shape), placement="NPU", node_name=f"in{index}")
    t.set_meta(torch.empty(shape, dtype=dtype, device="meta"))
    return t


@pytest.mark.parametrize("lower,op", [(conv.lower, "npu_alltoall_allgather_bmm"),
                                      (conv.lower_adjoint, "npu_bmm_reducescatter_alltoall")])
@pytest.mark.parametrize("x_dtype,w_dtype,b_dtype,arg,rule", [
    (torch.float32, torch.float32, None, "x", "x.dtype"),
    (torch.float16, torch.bfloat16, None, "weight", "weight.dtype"),
    (torch.float16, torch.float16, torch.float32, "bias", "bias.dtype"),
    (torch.bfloat16, torch.bfloat16, torch.bfloat16, "bias", "bias.dtype"),
])
def test_converters_apply_the_npu_dtype_rules_themselves(ta, lower, op, x_dtype, w_dtype, b_dtype, arg, rule):
    # the converters' own checks, on torchair ge tensors, for graphs that skipped the fake kernel
    from torchair.ge._ge_graph import GeGraph

    with GeGraph(name="direct") as graph:
        x = _ge_data(ta, 0, x_dtype, (4, 3, 8))
        w = _ge_data(ta, 1, w_dtype, (2, 8, 5))
        b = None if b_dtype is None else _ge_data(ta, 2, b_dtype, (2, 5))
        with pytest.raises(ContractTypeError) as info:
            lower(ta.ge, x, w, b, group_ep=COMM_EP, group_ep_worldsize=2, group_tp=COMM_TP, group_tp_worldsize=2)
        assert [o.type for o in graph.op] == ["Data"] * (3 if b is not None else 2)  # nothing emitted
    assert (info.value.op, info.value.arg, info.value.rule_id) == (op, arg, rule)


# ---- registration -------------------------------------------------------------------------------

FWD = torch.ops.moe_mc2.npu_alltoall_allgather_bmm.default
ADJ = torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall.default


@pytest.mark.parametrize("op", [FWD, ADJ], ids=["forward", "adjoint"])
def test_converter_signature_is_the_op_schema_plus_meta_outputs(ta, op):
    from torchair._ge_concrete_graph.fx2ge_converter import get_or_auto_gen_converter

    fn = get_or_auto_gen_converter(op)
    assert fn.require_meta is True
    params = inspect.signature(fn).parameters
    schema = op._schema.arguments
    assert list(params)[:-1] == [a.name for a in schema]
    assert list(params)[-1] == "meta_outputs"
    for a in schema:
        p = params[a.name]
        assert (p.kind == p.KEYWORD_ONLY) == a.kwarg_only, a.name
        if a.has_default_value():
            assert p.default == a.default_value, a.name
        else:
            assert p.default is p.empty, a.name


def test_register_all_registers_with_torchair_when_importable(ta):
    conv._reset_for_tests()
    done = integration.register_all()
    assert done["torchair"] is True


def test_register_all_without_torchair_is_silent(monkeypatch, capsys, caplog):
    real_torchair.unload()  # the tree off sys.path (modules a fixture imported may stay loaded)
    monkeypatch.delitem(sys.modules, "torchair", raising=False)
    assert not integration._installed("torchair")
    conv._reset_for_tests()
    try:
        done = integration.register_all()
    finally:
        conv._reset_for_tests()
    assert done == {"torchair": False, "npu": False}
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []


def test_import_moe_mc2_prints_nothing_here():
    import subprocess
    r = subprocess.run([sys.executable, "-c", "import moe_mc2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", "")


def test_names_match_spec_lowering_section():
    # the contract's GE names (docs/contract.md §9), restated here on purpose: names.py must say exactly this.
    assert GE_OP_TYPE == "AlltoAllAllGatherBatchMatMul"
    assert GE_INPUTS == ("x", "weight", "bias")
    assert GE_OUTPUTS == ("y1", "y2", "y3")
    assert [(a.name, a.kind) for a in GE_ATTRS] == [
        ("group_ep", "str"), ("group_tp", "str"), ("ep_world_size", "int"), ("tp_world_size", "int"),
        ("x_shard_type", "int"), ("act_type", "int"), ("transpose_weight", "bool"),
        ("output_y2_flag", "bool"), ("output_y3_flag", "bool")]
    defaults = {a.name: a.default for a in GE_ATTRS if not a.required}
    assert defaults == {"x_shard_type": 0, "act_type": 0, "transpose_weight": False,
                        "output_y2_flag": False, "output_y3_flag": False}
