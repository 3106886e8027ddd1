"""Stand-ins for torchair's three native modules, so its Python tree runs here unchanged.

torchair (shipped in the torch-npu wheel, see torch_npu_wheel.py) is Python over three compiled
modules: `torchair.core._torchair` (GE session, op-definition queries, graph load/compile/run),
`torchair.core._npu_graph_executor` and `torchair.core._npu_utils` (torch_npu tensor helpers).
Everything else - the dynamo backend, aot autograd, the FX -> GE interpreter, every converter,
torchair's own GE graph passes, the GraphDef serialisation - is torchair's code as shipped.

What these stand-ins answer, and from where:
  - `get_registered_ir_def(op_type)` / `check_cann_compat(...)` (GE's OperatorFactory on a real
    machine): from the REG_OPs of this project's op_proto headers, parsed (cann_sources.py), and
    from CANN's built-in `BatchMatMulReduceScatterAlltoAll` (the adjoint's lowering target, see
    `adjoint_ir`). Any other op type is unknown here, as it would be on a CANN without it.
  - `TorchNpuGraphBase.load(serialized GraphDef, ...)`: parses and records the graph (`LOADED`),
    the point where GE would take over; `compile` does nothing; `run` raises `NeedsNpu` unless
    `RUN_RETURNS_ZEROS` is set, in which case it returns zero tensors of the graph's output
    dtypes and hint shapes (so a training step can go on to the backward graph's load).
  - `InitializeGraphEngine` / `FinalizeGraphEngine`: record the options / do nothing.
  - everything that needs the NPU runtime (dumps, export, stdout channel, torch_npu tensor
    helpers) raises `NeedsNpu`.
"""
from __future__ import annotations

import dataclasses
import enum
import sys
import types
from typing import Dict, List, Optional

from . import cann_sources

ADJOINT_DTYPES = {
    # CANN's REG_OP(BatchMatMulReduceScatterAlltoAll) (ops-transformer, mc2/batch_mat_mul_reduce_scatter_allto_all,
    # op_graph proto): the TensorType list of each input and output.
    "x": ("DT_FLOAT16", "DT_BF16"),
    "weight": ("DT_FLOAT16", "DT_BF16"),
    "bias": ("DT_FLOAT16", "DT_FLOAT", "DT_BF16"),
    "y": ("DT_FLOAT16", "DT_BF16"),
}

_VT = {"str": "VT_STRING", "int": "VT_INT", "bool": "VT_BOOL", "float": "VT_FLOAT", "list_int": "VT_LIST_INT"}
_INPUT_KIND = {"INPUT": "required", "OPTIONAL_INPUT": "optional", "DYNAMIC_INPUT": "dynamic"}
_OUTPUT_KIND = {"OUTPUT": "required", "DYNAMIC_OUTPUT": "dynamic"}


class NeedsNpu(RuntimeError):
    """Raised where torchair would hand over to GE / the NPU runtime."""


def adjoint_ir() -> dict:
    """CANN's BatchMatMulReduceScatterAlltoAll in parse_reg_op's shape: the names, order, kinds and
    defaults from contract/names.py (ADJOINT_GE_*), the dtype lists from ADJOINT_DTYPES."""
    from moe_mc2.contract import names

    inputs = [(n, "OPTIONAL_INPUT" if n in names.ADJOINT_GE_OPTIONAL_INPUTS else "INPUT", ADJOINT_DTYPES[n])
              for n in names.ADJOINT_GE_INPUTS]
    outputs = [(n, "OUTPUT", ADJOINT_DTYPES[n]) for n in names.ADJOINT_GE_OUTPUTS]
    attrs = [(a.name, a.kind, a.required, None if a.required else a.default) for a in names.ADJOINT_GE_ATTRS]
    return {"inputs": inputs, "outputs": outputs, "attrs": attrs}


_IR_CACHE: Dict[str, Optional[dict]] = {}


def ir_def(op_type: str) -> Optional[dict]:
    """The registered definition of `op_type` (parse_reg_op's shape), or None when unknown here."""
    if op_type not in _IR_CACHE:
        from moe_mc2.contract import names

        if op_type == names.ADJOINT_GE_OP_TYPE:
            _IR_CACHE[op_type] = adjoint_ir()
        elif cann_sources.files_declaring("op_proto/**/*.h", f"REG_OP({op_type})"):
            _IR_CACHE[op_type] = cann_sources.project_reg_op(op_type)
        else:
            _IR_CACHE[op_type] = None
    return _IR_CACHE[op_type]


# ---- torchair.core._torchair ---------------------------------------------------------------------

def get_registered_ir_def(op_type: str):
    """(status, [(input, kind)], [(output, kind)], [(attr, VT_*)]) as GE's GetRegisteredIrDef lists them."""
    ir = ir_def(op_type)
    if ir is None:
        return "ERROR", [], [], []
    inputs = [(n, _INPUT_KIND[k]) for n, k, _ in ir["inputs"]]
    outputs = [(n, _OUTPUT_KIND[k]) for n, k, _ in ir["outputs"]]
    attrs = [(n, _VT[k]) for n, k, _, _ in ir["attrs"]]
    return "SUCCESS", inputs, outputs, attrs


def check_cann_compat(optype: str, optional_inputs, optional_attrs) -> str:
    """"" when `optype` exists and knows every optional input and attribute named; else why not."""
    ir = ir_def(optype)
    if ir is None:
        return f"OperatorFactory find optype {optype} failed, maybe you need upgrade cann version."
    known_inputs = {n for n, _, _ in ir["inputs"]}
    known_attrs = {n for n, _, _, _ in ir["attrs"]}
    bad_inputs = [n for n in optional_inputs if n not in known_inputs]
    bad_attrs = [n for n in optional_attrs if n not in known_attrs]
    if not bad_inputs and not bad_attrs:
        return ""
    return (f"optype {optype} unsupported optional input [{', '.join(bad_inputs)}], "
            f"optional attr [{', '.join(bad_attrs)}], please upgrade cann version.")


# The names torchair's llm_datadist tables use (only as keys here: no tensor is ever created).
TorchDataType = enum.IntEnum("TorchDataType", [
    "BOOL", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "FLOAT16", "BF16",
    "FLOAT32", "FLOAT64", "COMPLEX32", "COMPLEX64", "COMPLEX128"], start=0)


@dataclasses.dataclass
class LoadedGraph:
    """One graph as torchair hands it to GE: the parsed GraphDef and the load arguments."""

    name: str
    graph: object  # torchair._ge_concrete_graph.ge_ir_pb2.GraphDef (the ModelDef's only graph)
    options: dict
    input_placements: list
    output_dtypes: list
    executor_type: int
    input_shapes: Optional[list] = None
    output_shapes: Optional[list] = None


LOADED: List[LoadedGraph] = []
ENGINE_OPTIONS: List[dict] = []
RUN_RETURNS_ZEROS = False


class TorchNpuGraphBase:
    def __init__(self, name: str = ""):
        self._name = str(name)
        self._loaded: Optional[LoadedGraph] = None

    def load(self, serialized_proto, options, input_placements, output_dtypes, executor_type):
        from torchair._ge_concrete_graph.ge_ir_pb2 import ModelDef

        model = ModelDef()  # what GeGraph serialises: a ModelDef holding the one GraphDef
        model.ParseFromString(serialized_proto)
        if len(model.graph) != 1:
            raise RuntimeError(f"graph {self._name}: expected one GraphDef in the ModelDef, got {len(model.graph)}")
        self._loaded = LoadedGraph(self._name, model.graph[0], dict(options), list(input_placements), list(output_dtypes),
                                   int(executor_type))
        LOADED.append(self._loaded)

    def set_hint_shape(self, inputs_shape, outputs_shape):
        if self._loaded is None:
            raise RuntimeError("Set graph inputs and outputs shape must after load")
        self._loaded.input_shapes = [list(s) for s in inputs_shape]
        self._loaded.output_shapes = [list(s) for s in outputs_shape]

    def compile(self):
        if self._loaded is None:
            raise RuntimeError(f"graph {self._name} compiled before it was loaded")

    def auto_tune(self, args):
        raise NeedsNpu("auto_tune (AOE) needs GE and an NPU")

    def summary(self):
        raise NeedsNpu("summary needs a compiled GE graph")

    def run(self, args):
        if not RUN_RETURNS_ZEROS:
            raise NeedsNpu(f"graph {self._name} was loaded; running it needs GE and an NPU")
        return self._zeros()

    def _zeros(self):
        import torch
        from torchair.ge._ge_graph import ge_type_to_torch_type  # noqa: PLC0415

        got = self._loaded
        if got.output_shapes is None or any(d < 0 for s in got.output_shapes for d in s):
            raise NeedsNpu(f"graph {self._name}: output shapes {got.output_shapes} are not static")
        return [torch.zeros(s, dtype=ge_type_to_torch_type(dt)) for s, dt in zip(got.output_shapes, got.output_dtypes)]


def InitializeGraphEngine(options):  # noqa: N802 - the native name
    ENGINE_OPTIONS.append(dict(options))


def FinalizeGraphEngine():  # noqa: N802
    return None


def StupidRepeat(word, times):  # noqa: N802
    return None


def SetDebugLogPath(path):  # noqa: N802
    return None


def _needs_npu(what):
    def fn(*args, **kwargs):
        raise NeedsNpu(f"{what} needs the NPU runtime")
    fn.__name__ = what
    return fn


# ---- the modules --------------------------------------------------------------------------------

def _torchair_module() -> types.ModuleType:
    mod = types.ModuleType("torchair.core._torchair", "stand-in for torchair's native _torchair (tests)")
    for name in ("get_registered_ir_def", "check_cann_compat", "TorchDataType", "TorchNpuGraphBase",
                 "InitializeGraphEngine", "FinalizeGraphEngine", "StupidRepeat", "SetDebugLogPath"):
        setattr(mod, name, globals()[name])
    for name in ("InitDeviceStdoutChannel", "export", "CheckAclnnAvaliable", "GetSocName", "AclopStartDumpArgs",
                 "AclopStopDumpArgs", "as_torch_tensors", "AclmdlSetDump"):
        setattr(mod, name, _needs_npu(name))
    return mod


def _executor_module() -> types.ModuleType:
    mod = types.ModuleType("torchair.core._npu_graph_executor", "stand-in (tests)")
    mod.GetNpuStorageSizes = _needs_npu("GetNpuStorageSizes")
    return mod


def _npu_utils_module() -> types.ModuleType:
    mod = types.ModuleType("torchair.core._npu_utils", "stand-in (tests)")
    mod.NpuFormatCastViaCpu = _needs_npu("NpuFormatCastViaCpu")
    return mod


NATIVE_MODULES = ("torchair.core._torchair", "torchair.core._npu_graph_executor", "torchair.core._npu_utils")


def install() -> None:
    """Put the three stand-ins where `from torchair.core import _torchair` finds them (idempotent)."""
    makers = (_torchair_module, _executor_module, _npu_utils_module)
    for name, make in zip(NATIVE_MODULES, makers):
        if name not in sys.modules:
            sys.modules[name] = make()


def reset() -> None:
    """Forget the graphs loaded so far and go back to raising on run."""
    global RUN_RETURNS_ZEROS
    LOADED.clear()
    RUN_RETURNS_ZEROS = False
