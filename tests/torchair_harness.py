"""Drive graphs through the real torchair (tests/support/real_torchair.py) and read what it built.

Two routes, both torchair's code as shipped down to the graph load:
  - `through_torch_compile`: `torch.compile(fn, backend=torchair.get_npu_backend(...))` - dynamo,
    aot autograd, torchair's decompositions and FX passes, its FX -> GE interpreter, its GE passes;
  - `through_fx_compiler`: an aten FX graph (make_fx) handed to `torchair.get_compiler(...)` -
    the FX -> GE interpreter and the GE passes without dynamo.
Each call returns a `Captured`: the GraphDefs as torchair's interpreter built them (torchair's own
`debug.graph_dump` in text form, written right after conversion, before its GE passes and before
`_normalize_ge_graph` turns undefined dtypes into DT_FLOAT) and the GraphDefs handed to GE's load
(the native stand-in records them).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict, List, Optional

import torch

from support import torchair_native

DT_NAMES = {torch.float16: "DT_FLOAT16", torch.bfloat16: "DT_BF16", torch.float32: "DT_FLOAT",
            torch.int32: "DT_INT32", torch.int64: "DT_INT64"}


@dataclasses.dataclass
class Captured:
    built: list  # GraphDef per compiled graph, as converted (compile order)
    loaded: list  # torchair_native.LoadedGraph per graph GE was asked to load
    error: Optional[BaseException] = None  # what calling the compiled graph raised (NeedsNpu expected)


def _dump_config(ta, dump_dir):
    cfg = ta.CompilerConfig()
    cfg.debug.graph_dump.type = "txt"
    cfg.debug.graph_dump.path = str(dump_dir)
    return cfg


def _read_dumps(dump_dir) -> list:
    from google.protobuf import text_format
    from torchair._ge_concrete_graph.ge_ir_pb2 import GraphDef

    pat = re.compile(r"dynamo_original_graph_(\d+)_rank_\d+_pid_\d+_ts_(\d+)\.txt$")
    found = []
    for name in os.listdir(dump_dir):
        m = pat.match(name)
        if m:
            found.append((int(m.group(2)), int(m.group(1)), name))
    graphs = []
    for _, _, name in sorted(found):
        g = GraphDef()
        with open(os.path.join(dump_dir, name), encoding="utf-8") as f:
            text_format.Parse(f.read(), g)
        graphs.append(g)
    return graphs


def _call(compiled, args, then=None) -> Optional[BaseException]:
    try:
        out = compiled(*args)
        if then is not None:
            then(out)
    except torchair_native.NeedsNpu as exc:
        return exc
    return None


def through_torch_compile(ta, fn, args, dump_dir, *, dynamic=False, then=None, zeros=False) -> Captured:
    """Compile `fn` with torchair's backend and call it once (then `then(outputs)`, e.g. a backward)."""
    torch._dynamo.reset()
    torchair_native.reset()
    torchair_native.RUN_RETURNS_ZEROS = zeros
    compiled = torch.compile(fn, backend=ta.get_npu_backend(compiler_config=_dump_config(ta, dump_dir)),
                             dynamic=dynamic, fullgraph=True)
    try:
        error = _call(compiled, args, then)
    finally:
        torchair_native.RUN_RETURNS_ZEROS = False
    return Captured(_read_dumps(dump_dir), list(torchair_native.LOADED), error)


def through_fx_compiler(ta, fn, args, dump_dir) -> Captured:
    """make_fx(fn) on fake tensors, then torchair's FX compiler, then one call (up to the load)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    torchair_native.reset()
    gm = make_fx(fn, tracing_mode="fake")(*args)
    compiled = ta.get_compiler(_dump_config(ta, dump_dir))(gm, list(args))
    error = _call(compiled, args)
    return Captured(_read_dumps(dump_dir), list(torchair_native.LOADED), error)


# ---- reading a GraphDef -------------------------------------------------------------------------

def dt_name(code: int) -> str:
    from torchair._ge_concrete_graph.ge_ir_pb2 import DataType

    return DataType.Name(code)


class Graph:
    """Index over one GraphDef: ops by name, producers and consumers of each tensor."""

    def __init__(self, graph_def):
        self.g = graph_def
        self.ops = {op.name: op for op in graph_def.op}
        self.consumers: Dict[str, List] = {}
        for op in graph_def.op:
            for i, src in enumerate(op.input):
                if src and not src.endswith(":-1"):
                    self.consumers.setdefault(src, []).append((op, i))

    def of_type(self, op_type: str) -> list:
        return [op for op in self.g.op if op.type == op_type]

    def producer(self, tensor: str):
        """(op, output index) of 'name:index'; (None, None) for an unfed optional input ('')."""
        if not tensor:
            return None, None
        name, _, index = tensor.rpartition(":")
        return self.ops[name], int(index)

    def net_output(self):
        (out,) = self.of_type("NetOutput")
        return out

    def data_key(self, op, keys: dict):
        """The key of a Data op among {key: (shape, dtype)} by its output shape and dtype."""
        desc = op.output_desc[0]
        got = (tuple(desc.shape.dim), dt_name(desc.dtype))
        hits = [k for k, (shape, dtype) in keys.items() if (tuple(shape), DT_NAMES[dtype]) == got]
        if len(hits) != 1:
            raise AssertionError(f"Data {op.name} {got} matches {hits} of the graph inputs")
        return hits[0]


def attr_value(attr):
    """('s' | 'i' | 'b' | ..., python value) of an AttrDef: which proto field holds it, and the value."""
    field = attr.WhichOneof("value")
    value = getattr(attr, field)
    if field == "s":
        value = value.decode()
    return field, value


ATTR_FIELD = {"str": "s", "int": "i", "bool": "b"}


def undefined_edges(graph_def, only=None) -> list:
    """Every (op, 'in'/'out', desc name) whose dtype is DT_UNDEFINED, unfed optional inputs aside.

    `only`: op types to look at - their inputs, their outputs and the outputs feeding them (torchair's
    own aten converters leave intermediate dtypes to GE's inference; the fused nodes must not)."""
    from torchair._ge_concrete_graph.ge_ir_pb2 import DataType

    ops = {op.name: op for op in graph_def.op}
    chosen = [op for op in graph_def.op if only is None or op.type in only]
    bad = []
    for op in chosen:
        for i, desc in enumerate(op.input_desc):
            if "_is_unfed_optional" in desc.attr:
                continue
            if desc.dtype == DataType.DT_UNDEFINED:
                bad.append((op.name, "in", desc.name))
            if only is not None and i < len(op.input) and op.input[i]:
                name, _, idx = op.input[i].rpartition(":")
                if ops[name].output_desc[int(idx)].dtype == DataType.DT_UNDEFINED:
                    bad.append((name, "out", ops[name].output_desc[int(idx)].name))
        for desc in op.output_desc:
            if desc.dtype == DataType.DT_UNDEFINED:
                bad.append((op.name, "out", desc.name))
    return bad


def edge_mismatches(graph: Graph) -> list:
    """Every edge whose consumer-side dtype differs from the producer's output dtype."""
    bad = []
    for op in graph.g.op:
        for i, src in enumerate(op.input):
            if not src or src.endswith(":-1"):
                continue
            prod, idx = graph.producer(src)
            want = prod.output_desc[idx].dtype
            got = op.input_desc[i].dtype
            if want != got:
                bad.append((src, f"{op.name}.{op.input_desc[i].name}", dt_name(want), dt_name(got)))
    return bad

