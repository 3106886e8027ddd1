"""The torchair converter, driven through a stand-in of torchair's public API (no torchair here).

The stand-in mirrors what matters of torchair (checked against its sources): the converter
registry is keyed by the OpOverload; `ge.custom_op` takes inputs as a name->tensor dict (None =
absent optional input), outputs as names, attrs as ge.attr values, and returns the output tensor
or a tuple of them; ge tensors carry a GE dtype code and the meta (fake) tensor of the FX value.
"""
from __future__ import annotations

import importlib.machinery
import inspect
import itertools
import sys
import types

import pytest
import torch

import moe_mc2
from moe_mc2 import integration
from moe_mc2.contract.errors import ContractTypeError
from moe_mc2.contract.names import GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OUTPUTS
from moe_mc2.integration import torchair as conv

# ---- the stand-in -------------------------------------------------------------------------------
class DataType:
    DT_FLOAT = 0
    DT_FLOAT16 = 1
    DT_INT8 = 2
    DT_INT32 = 3
    DT_INT64 = 9
    DT_DOUBLE = 11
    DT_BF16 = 27


_CODES = {torch.float32: DataType.DT_FLOAT, torch.float16: DataType.DT_FLOAT16, torch.bfloat16: DataType.DT_BF16,
          torch.int32: DataType.DT_INT32, torch.int64: DataType.DT_INT64, torch.float64: DataType.DT_DOUBLE}


class Attr:
    def __init__(self, cls, value):
        self.cls, self.value = cls, value

    def __repr__(self):
        return f"ge.attr.{self.cls}({self.value!r})"


class _AttrBuilder:
    def __init__(self, cls, check):
        self.cls, self.check = cls, check

    def __call__(self, value):
        if not self.check(value):  # torchair would store it in a typed proto field and fail
            raise TypeError(f"ge.attr.{self.cls} got {type(value).__name__} {value!r}")
        return Attr(self.cls, value)


class Tensor:
    def __init__(self, name, meta=None, dtype=None):
        self.name, self.meta = name, meta
        self.dtype = dtype if dtype is not None else (_CODES[meta.dtype] if meta is not None else None)

    def __repr__(self):
        return f"Tensor({self.name})"


class TensorSpec:
    def __init__(self, meta):
        self.meta = meta


class Node:
    def __init__(self, op_type, inputs, outputs, attrs):
        self.op_type, self.inputs, self.outputs, self.attrs = op_type, inputs, outputs, attrs
        self.results = tuple(Tensor(f"{op_type}:{i}") for i in range(len(outputs)))


def make_fake_torchair():
    """A fresh fake `torchair` module; `.nodes` and `.converters` record what was done with it."""
    mod = types.ModuleType("torchair")
    mod.__spec__ = importlib.machinery.ModuleSpec("torchair", None)
    mod.nodes, mod.converters = [], {}

    ge = types.ModuleType("torchair.ge")
    ge.DataType, ge.Tensor, ge.TensorSpec = DataType, Tensor, TensorSpec
    attr = types.ModuleType("torchair.ge.attr")
    attr.Str = _AttrBuilder("Str", lambda v: isinstance(v, str))
    attr.Int = _AttrBuilder("Int", lambda v: isinstance(v, int) and not isinstance(v, bool))
    attr.Bool = _AttrBuilder("Bool", lambda v: isinstance(v, bool))
    attr.ListInt = _AttrBuilder("ListInt", lambda v: all(isinstance(i, int) for i in v))
    ge.attr = attr

    def custom_op(op_type, *, inputs, outputs, attrs=None, node_name=None):
        for name, value in (attrs or {}).items():
            if not isinstance(value, Attr):
                raise AssertionError(f"attr {name} is {type(value).__name__}, not a ge.attr value")
        for name, value in inputs.items():
            if value is not None and not isinstance(value, Tensor):
                raise AssertionError(f"input {name} is {type(value).__name__}, not a ge.Tensor")
        node = Node(op_type, dict(inputs), list(outputs), dict(attrs or {}))
        mod.nodes.append(node)
        return node.results[0] if len(node.results) == 1 else node.results

    ge.custom_op = custom_op
    mod.ge = ge

    def register_fx_node_ge_converter(target):
        def deco(fn):
            mod.converters[target] = fn
            return fn
        return deco

    mod.register_fx_node_ge_converter = register_fx_node_ge_converter
    return mod


# ---- helpers ------------------------------------------------------------------------------------

GROUPS = {"group_ep": "7", "group_tp": "8"}


def comm(name):  # stands in for ProcessGroup -> HCCL communicator name
    return f"hccl_world_{name}"


def case_tensors(fake, *, shard_type, dtype, bias_rank, transposed, ep=2, tp=2, E=4, C=6, H=8, N=5):
    """ge tensors (with meta tensors) for one call of the SPEC's shapes."""
    El = E // ep
    x_shape = (E, C // tp, H) if shard_type == 1 else (E, C, H // tp)
    x = fake.ge.Tensor("x", torch.empty(x_shape, dtype=dtype, device="meta"))
    if transposed:
        w_meta = torch.empty((El, N, H), dtype=dtype, device="meta").transpose(1, 2)
    else:
        w_meta = torch.empty((El, H, N), dtype=dtype, device="meta")
    w = fake.ge.Tensor("weight", w_meta)
    bias = None
    if bias_rank:
        b_shape = (El, N) if bias_rank == 2 else (El, 1, N)
        b_dtype = torch.float16 if dtype == torch.float16 else torch.float32
        bias = fake.ge.Tensor("bias", torch.empty(b_shape, dtype=b_dtype, device="meta"))
    return x, w, bias


def lower(fake, x, w, bias, **kw):
    args = dict(GROUPS, group_ep_worldsize=2, group_tp_worldsize=2)
    args.update(kw)
    return conv.lower(fake.ge, x, w, bias, comm_name=comm, **args)


# ---- names --------------------------------------------------------------------------------------

def test_names_match_spec_lowering_section():
    # SPEC "Lowering to GE", restated here on purpose: names.py must say exactly this.
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


# ---- every argument combination -----------------------------------------------------------------

COMBOS = list(itertools.product((0, 1), range(5), (None, 2, 3), (torch.float16, torch.bfloat16),
                                (False, True), (False, True), (False, True)))


def _id(c):
    shard, act, bias, dtype, tr, y2, y3 = c
    return f"s{shard}-a{act}-b{bias or 0}-{str(dtype)[6:]}-{'T' if tr else 'N'}-y2{int(y2)}-y3{int(y3)}"


@pytest.mark.parametrize("combo", COMBOS, ids=[_id(c) for c in COMBOS])
def test_lowering_emits_the_fused_node(combo):
    shard, act, bias_rank, dtype, transposed, y2, y3 = combo
    fake = make_fake_torchair()
    x, w, bias = case_tensors(fake, shard_type=shard, dtype=dtype, bias_rank=bias_rank, transposed=transposed)
    out = lower(fake, x, w, bias, shard_type=shard, act_type=act, need_allgather_out=y2,
                need_activation_feature=y3)

    node = fake.nodes[-1]
    assert node.op_type == "AlltoAllAllGatherBatchMatMul"
    assert list(node.inputs) == ["x", "weight", "bias"]  # order matters: GE binds by index
    assert node.inputs["x"] is x
    assert node.inputs["bias"] is bias
    if transposed:
        # the stored (El, M/tp, H) tensor goes in: the view is swapped back by one TransposeD
        assert len(fake.nodes) == 2
        tnode = fake.nodes[0]
        assert tnode.op_type == "TransposeD" and tnode.inputs == {"x": w}
        assert (tnode.attrs["perm"].cls, tnode.attrs["perm"].value) == ("ListInt", [0, 2, 1])
        assert node.inputs["weight"] is tnode.results[0]
    else:
        assert len(fake.nodes) == 1 and node.inputs["weight"] is w
    assert node.outputs == ["y1", "y2", "y3"]
    assert out == node.results and len(out) == 3

    want = {
        "group_ep": ("Str", "hccl_world_7"), "group_tp": ("Str", "hccl_world_8"),
        "ep_world_size": ("Int", 2), "tp_world_size": ("Int", 2),
        "x_shard_type": ("Int", shard), "act_type": ("Int", act),
        "transpose_weight": ("Bool", transposed), "output_y2_flag": ("Bool", y2),
        "output_y3_flag": ("Bool", y3 and act != 0),  # SPEC: y3 only with an activation
    }
    got = {k: (v.cls, v.value) for k, v in node.attrs.items()}
    assert got == want
    for k, (_, value) in want.items():  # bool is an int in Python: check the exact type too
        assert type(node.attrs[k].value) is type(value), k


def test_world_sizes_and_groups_pass_through():
    fake = make_fake_torchair()
    x, w, b = case_tensors(fake, shard_type=1, dtype=torch.float16, bias_rank=None, transposed=False,
                           ep=4, tp=8, E=8, C=16)
    lower(fake, x, w, b, group_ep="ep_g", group_ep_worldsize=4, group_tp="tp_g", group_tp_worldsize=8,
          shard_type=1)
    attrs = fake.nodes[-1].attrs
    assert attrs["ep_world_size"].value == 4 and attrs["tp_world_size"].value == 8
    assert attrs["group_ep"].value == "hccl_world_ep_g" and attrs["group_tp"].value == "hccl_world_tp_g"


def test_weight_without_meta_is_read_dense():
    # no meta tensor: torchair's GE tensors are dense in their logical shape
    fake = make_fake_torchair()
    x = fake.ge.Tensor("x", torch.empty((4, 3, 8), dtype=torch.bfloat16, device="meta"))
    w = fake.ge.Tensor("w", None, dtype=fake.ge.DataType.DT_BF16)
    lower(fake, x, w, None, shard_type=1)
    assert fake.nodes[-1].attrs["transpose_weight"].value is False
    assert len(fake.nodes) == 1


def test_non_contiguous_weight_that_is_not_a_transpose_is_not_flagged():
    fake = make_fake_torchair()
    x = fake.ge.Tensor("x", torch.empty((4, 3, 8), dtype=torch.float16, device="meta"))
    w = fake.ge.Tensor("w", torch.empty((2, 8, 10), dtype=torch.float16, device="meta")[:, :, ::2])
    lower(fake, x, w, None, shard_type=1)
    assert fake.nodes[-1].attrs["transpose_weight"].value is False


# ---- rejected dtypes ----------------------------------------------------------------------------

@pytest.mark.parametrize("x_dtype,w_dtype,b_dtype,arg,words", [
    (torch.float32, torch.float32, None, "x", "float16/bfloat16 on the NPU"),
    (torch.float16, torch.bfloat16, None, "weight", "must equal x's dtype (float16)"),
    (torch.float16, torch.float16, torch.float32, "bias", "must be float16 when x is float16"),
    (torch.bfloat16, torch.bfloat16, torch.bfloat16, "bias", "must be float32 when x is bfloat16"),
    (torch.bfloat16, torch.bfloat16, torch.float16, "bias", "must be float32 when x is bfloat16"),
])
def test_forbidden_dtypes_are_rejected(x_dtype, w_dtype, b_dtype, arg, words):
    fake = make_fake_torchair()
    x = fake.ge.Tensor("x", torch.empty((4, 3, 8), dtype=x_dtype, device="meta"))
    w = fake.ge.Tensor("w", torch.empty((2, 8, 5), dtype=w_dtype, device="meta"))
    b = None if b_dtype is None else fake.ge.Tensor("b", torch.empty((2, 5), dtype=b_dtype, device="meta"))
    with pytest.raises(ContractTypeError) as err:
        lower(fake, x, w, b, shard_type=1)
    assert err.value.arg == arg
    assert words in str(err.value)
    assert fake.nodes == []  # nothing emitted for a rejected call


def test_dtype_from_ge_code_when_meta_missing():
    fake = make_fake_torchair()
    x = fake.ge.Tensor("x", None, dtype=fake.ge.DataType.DT_FLOAT)
    w = fake.ge.Tensor("w", None, dtype=fake.ge.DataType.DT_FLOAT)
    with pytest.raises(ContractTypeError, match="x=.float32"):
        lower(fake, x, w, None)


# ---- registration -------------------------------------------------------------------------------

OP = torch.ops.moe_mc2.npu_alltoall_allgather_bmm.default


def test_register_keys_the_op_overload_and_lowers_through_torchair_ge():
    fake = make_fake_torchair()
    conv._reset_for_tests()
    try:
        assert conv.register(fake, comm_name=comm)
        fn = fake.converters[OP]
        x, w, b = case_tensors(fake, shard_type=0, dtype=torch.float16, bias_rank=3, transposed=False)
        out = fn(x, w, bias=b, group_ep="1", group_ep_worldsize=2, group_tp="2", group_tp_worldsize=2,
                 shard_type=0, act_type=2, need_allgather_out=True, need_activation_feature=True,
                 meta_outputs=[fake.ge.TensorSpec(None)] * 3)
        assert out == fake.nodes[-1].results
        assert fake.nodes[-1].attrs["group_ep"].value == "hccl_world_1"
    finally:
        conv._reset_for_tests()


def test_converter_signature_is_the_op_schema_plus_meta_outputs():
    fake = make_fake_torchair()
    conv._reset_for_tests()
    try:
        conv.register(fake, comm_name=comm)
        params = inspect.signature(fake.converters[OP]).parameters
    finally:
        conv._reset_for_tests()
    schema = OP._schema.arguments
    assert list(params)[:-1] == [a.name for a in schema]
    assert list(params)[-1] == "meta_outputs"
    for a in schema:
        p = params[a.name]
        assert (p.kind == p.KEYWORD_ONLY) == a.kwarg_only, a.name
        if a.has_default_value():
            assert p.default == a.default_value, a.name
        else:
            assert p.default is p.empty, a.name


def test_register_all_registers_with_torchair_when_importable(monkeypatch):
    fake = make_fake_torchair()
    monkeypatch.setitem(sys.modules, "torchair", fake)
    conv._reset_for_tests()
    try:
        done = integration.register_all()
        assert done["torchair"] is True
        assert OP in fake.converters
    finally:
        conv._reset_for_tests()


def test_register_all_without_torchair_is_silent(monkeypatch, capsys, caplog):
    monkeypatch.delitem(sys.modules, "torchair", raising=False)
    assert not integration._installed("torchair")  # this machine has none: the real absent case
    conv._reset_for_tests()
    done = integration.register_all()
    assert done == {"torchair": False, "npu": False}
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []


def test_import_moe_mc2_prints_nothing_here():
    import subprocess
    r = subprocess.run([sys.executable, "-c", "import moe_mc2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", "")


# ---- a real FX node, as torchair hands it over --------------------------------------------------

def _traced_node(transposed: bool):
    """make_fx of a call whose weight is a transpose view; returns the op's node."""
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(x, w_stored):
        w = w_stored.transpose(1, 2) if transposed else w_stored
        return torch.ops.moe_mc2.npu_alltoall_allgather_bmm(
            x, w, group_ep="1", group_ep_worldsize=2, group_tp="2", group_tp_worldsize=2,
            shard_type=1, act_type=1, need_allgather_out=True, need_activation_feature=False)

    x = torch.randn(4, 3, 8, dtype=torch.float16)
    w = torch.randn(2, 5, 8, dtype=torch.float16) if transposed else torch.randn(2, 8, 5, dtype=torch.float16)
    gm = make_fx(f, tracing_mode="fake")(x, w)
    return next(n for n in gm.graph.nodes if n.target is OP)


@pytest.mark.parametrize("transposed", [False, True])
def test_lowering_a_traced_node(transposed):
    node = _traced_node(transposed)
    fake = make_fake_torchair()
    as_ge = lambda a: fake.ge.Tensor(a.name, a.meta["val"]) if isinstance(a, torch.fx.Node) else a  # noqa: E731
    args = [as_ge(a) for a in node.args]
    kwargs = {k: as_ge(v) for k, v in node.kwargs.items()}
    conv._reset_for_tests()
    try:
        conv.register(fake, comm_name=comm)
        fake.converters[OP](*args, **kwargs, meta_outputs=[fake.ge.TensorSpec(v) for v in node.meta["val"]])
    finally:
        conv._reset_for_tests()
    attrs = fake.nodes[-1].attrs
    assert attrs["transpose_weight"].value is transposed
    assert attrs["act_type"].value == 1 and attrs["output_y2_flag"].value is True
    assert attrs["output_y3_flag"].value is False
