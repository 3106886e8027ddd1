"""torchair converters: both moe_mc2 ops become one fused GE node each inside torchair graphs.

  moe_mc2::npu_alltoall_allgather_bmm     -> AlltoAllAllGatherBatchMatMul (this project's OPP, same
                                             prototype as CANN's built-in op of that name)
  moe_mc2::npu_bmm_reducescatter_alltoall -> BatchMatMulReduceScatterAlltoAll (CANN's built-in op)

Names, order and defaults come from contract/names.py, the rules from contract/rules.py, so a GE
node cannot drift from the eager op. What a converter does, in order:

1. Rules the NPU applies and the fake kernel cannot (it also serves the portable float32 path):
   world sizes, group names, x/weight/bias dtypes on the NPU. A broken rule raises the eager op's
   contract error (op, argument, value, rule id) while torchair compiles the graph.
2. Groups: with torch.distributed initialized, each group argument must name a registered group of
   the declared size with this rank in it (`runtime.groups.resolve`, the eager op's check and
   errors); the node gets its HCCL communicator name (`runtime.groups.comm_name`: a c10d group
   name becomes its communicator's name, a communicator name - what the seed, MindSpeed and
   torch_npu's MC2 ops pass - stays as it is). Without torch.distributed the names go to GE as
   given: only GE, at load, knows the communicators then.
3. Weight: torchair has already materialised a transposed view as a GE `Transpose`, so the GE
   tensor it hands over is dense in the logical layout. When that Transpose swaps the last two
   dims (perm Const [0, 2, 1]) the node reads the Transpose's input - the weight as stored - with
   `transpose_weight=True`, the fold torchair's own graph passes make for GroupedMatmul
   (`move_transpose_into_mm`): the kernel reads the stored layout and the weight is not copied
   each step. The Transpose stays for any other reader; with none left, GE's PrunePass drops it.
   Any other producer: the tensor goes in as it is, `transpose_weight=False`.
4. One `ge.custom_op` node with every attribute typed (`ge.attr.Str/Int/Bool`); torchair sets the
   output dtypes and shapes from the op's fake outputs.
"""
from __future__ import annotations

import struct
import sys
from typing import Callable, Optional

import torch

from ..contract import rules
from ..contract.errors import ContractTypeError, ContractValueError, ContractViolation
from ..contract.names import (ADJOINT_GE_ATTRS, ADJOINT_GE_INPUTS, ADJOINT_GE_OP_TYPE, ADJOINT_GE_OUTPUTS,
                              ADJOINT_OP_NAME, GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OUTPUTS, OP_NAME)

# torch dtype <-> the attribute of ge.DataType naming it (torchair's DataType is a plain class of
# ints, looked up by name).
_GE_DTYPE_NAMES = {
    torch.float16: "DT_FLOAT16",
    torch.bfloat16: "DT_BF16",
    torch.float32: "DT_FLOAT",
    torch.float64: "DT_DOUBLE",
    torch.int8: "DT_INT8",
    torch.int32: "DT_INT32",
    torch.int64: "DT_INT64",
}

SWAP_LAST_TWO = (0, 2, 1)


# ---- errors torchair can re-raise ---------------------------------------------------------------

class _KeepsContractFields:
    """torchair re-raises a converter's exception as `type(e)(message)` (its `pretty_error_msg`);
    built that way, the error takes the contract fields of the one being handled, so the caller
    still gets the eager op's error class with its op, argument, value and rule id."""

    def __init__(self, *args):
        handled = sys.exc_info()[1]
        if len(args) == 1 and isinstance(args[0], str) and isinstance(handled, ContractViolation):
            ContractViolation.__init__(self, handled.op, handled.arg, handled.value, handled.rule_id, handled.rule)
            self.args = (args[0],)
        else:
            super().__init__(*args)


class GraphContractValueError(_KeepsContractFields, ContractValueError):
    pass


class GraphContractTypeError(_KeepsContractFields, ContractTypeError):
    pass


def _as_graph_error(exc: ContractViolation) -> ContractViolation:
    cls = GraphContractTypeError if isinstance(exc, TypeError) else GraphContractValueError
    return cls(exc.op, exc.arg, exc.value, exc.rule_id, exc.rule)


# ---- tensors ------------------------------------------------------------------------------------

def torch_dtype(ge, tensor) -> Optional[torch.dtype]:
    """The torch dtype of a ge tensor: from its meta (fake) tensor, else from its GE dtype."""
    meta = getattr(tensor, "meta", None)
    if isinstance(meta, torch.Tensor):
        return meta.dtype
    code = getattr(tensor, "dtype", None)
    for dtype, name in _GE_DTYPE_NAMES.items():
        if getattr(ge.DataType, name, object()) == code:
            return dtype
    return None


def _producer(graph, tensor_name: str):
    """(op, output index) of `name:index` in the GraphDef, or (None, None)."""
    name, _, index = tensor_name.rpartition(":")
    for op in graph.op:
        if op.name == name:
            return op, int(index)
    return None, None


def _const_ints(op) -> Optional[tuple]:
    """The values of a 1-D int32/int64 Const, or None."""
    if op is None or op.type != "Const":
        return None
    t = op.attr["value"].t
    if len(t.desc.shape.dim) != 1:
        return None
    n = t.desc.shape.dim[0]
    for code, size in (("q", 8), ("i", 4)):
        if n >= 0 and len(t.data) == n * size:
            return struct.unpack(f"<{n}{code}", t.data)
    return None


def stored_weight(weight, graph=None):
    """(the tensor to feed, transpose_weight) for a weight ge tensor (see the module doc, 3.).

    `graph` is the GraphDef being built (torchair's default graph when not given)."""
    node = getattr(weight, "node", None)
    if node is None or node.type != "Transpose" or len(node.input) < 2:
        return weight, False
    if graph is None:
        from torchair.ge._ge_graph import get_default_ge_graph  # noqa: PLC0415 - torchair only

        graph = get_default_ge_graph()
    perm_op, _ = _producer(graph, node.input[1])
    if _const_ints(perm_op) != SWAP_LAST_TWO:
        return weight, False
    source, index = _producer(graph, node.input[0])
    if source is None:
        return weight, False
    return type(weight)(source, index), True


# ---- rules and attributes -----------------------------------------------------------------------

def check_dtypes(op: str, x_dtype, weight_dtype, bias_dtype) -> None:
    """The contract's dtype rules as the NPU applies them (no float32 x), with the eager op's messages."""
    chk = rules.Checker(op)
    chk.x_dtype(x_dtype, portable=False)
    chk.weight_dtype(weight_dtype, x_dtype)
    if bias_dtype is not None:
        chk.bias_dtype(bias_dtype, x_dtype)


def communicator_names(op: str, group_ep: str, ep: int, group_tp: str, tp: int,
                       comm_name: Optional[Callable[[str], str]] = None) -> tuple:
    """The (ep, tp) communicator names for the node, after the eager op's group checks (module doc, 2.)."""
    import torch.distributed as dist

    from ..runtime import groups

    chk = rules.Checker(op)
    chk.world_sizes(ep, tp, portable=False)  # CANN's kernel: {2, 4, 8, 16}, never 1
    chk.groups(group_ep, group_tp)
    if dist.is_available() and dist.is_initialized():
        groups.resolve(op, "group_ep", group_ep, ep)
        groups.resolve(op, "group_tp", group_tp, tp)
    to_comm = comm_name or groups.comm_name
    return to_comm(group_ep), to_comm(group_tp)


def typed_attrs(ge, spec, values: dict) -> dict:
    """{GE name: ge.attr value} for every attribute of `spec` (names.py's GE_ATTRS or ADJOINT_GE_ATTRS)."""
    missing = {a.name for a in spec} ^ set(values)
    if missing:  # names.py and a converter disagree: a programming error, not a user error
        raise AssertionError(f"GE attributes without a value or unknown to names.py: {sorted(missing)}")
    kinds = {"str": ge.attr.Str, "int": ge.attr.Int, "bool": ge.attr.Bool}
    return {a.name: kinds[a.kind](values[a.name]) for a in spec}


def lower(ge, x, weight, bias=None, *, group_ep: str, group_ep_worldsize: int, group_tp: str,
          group_tp_worldsize: int, shard_type: int = 0, act_type: int = 0, need_allgather_out: bool = False,
          need_activation_feature: bool = False, comm_name: Optional[Callable[[str], str]] = None, graph=None):
    """Emit AlltoAllAllGatherBatchMatMul; returns its (y1, y2, y3) ge tensors."""
    try:
        check_dtypes(OP_NAME, torch_dtype(ge, x), torch_dtype(ge, weight),
                     None if bias is None else torch_dtype(ge, bias))
        comm_ep, comm_tp = communicator_names(OP_NAME, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                                              comm_name)
    except ContractViolation as exc:
        raise _as_graph_error(exc) from exc
    weight, transposed = stored_weight(weight, graph)
    want_y2, want_y3 = rules.output_flags(need_allgather_out, need_activation_feature, act_type)
    values = {
        "group_ep": comm_ep, "group_tp": comm_tp, "ep_world_size": group_ep_worldsize,
        "tp_world_size": group_tp_worldsize, "x_shard_type": shard_type, "act_type": act_type,
        "transpose_weight": transposed, "output_y2_flag": want_y2, "output_y3_flag": want_y3,
    }
    given = {"x": x, "weight": weight, "bias": bias}
    return ge.custom_op(GE_OP_TYPE, inputs={name: given[name] for name in GE_INPUTS},
                        outputs=list(GE_OUTPUTS), attrs=typed_attrs(ge, GE_ATTRS, values))


def lower_adjoint(ge, x, weight, bias=None, *, group_ep: str, group_ep_worldsize: int, group_tp: str,
                  group_tp_worldsize: int, shard_type: int = 0, comm_name: Optional[Callable[[str], str]] = None,
                  graph=None):
    """Emit CANN's BatchMatMulReduceScatterAlltoAll; returns its y ge tensor."""
    try:
        check_dtypes(ADJOINT_OP_NAME, torch_dtype(ge, x), torch_dtype(ge, weight),
                     None if bias is None else torch_dtype(ge, bias))
        comm_ep, comm_tp = communicator_names(ADJOINT_OP_NAME, group_ep, group_ep_worldsize, group_tp,
                                              group_tp_worldsize, comm_name)
    except ContractViolation as exc:
        raise _as_graph_error(exc) from exc
    weight, transposed = stored_weight(weight, graph)
    values = {
        "group_ep": comm_ep, "group_tp": comm_tp, "ep_world_size": group_ep_worldsize,
        "tp_world_size": group_tp_worldsize, "y_shard_type": shard_type, "transpose_weight": transposed,
    }
    given = {"x": x, "weight": weight, "bias": bias}
    return ge.custom_op(ADJOINT_GE_OP_TYPE, inputs={name: given[name] for name in ADJOINT_GE_INPUTS},
                        outputs=list(ADJOINT_GE_OUTPUTS), attrs=typed_attrs(ge, ADJOINT_GE_ATTRS, values))


# ---- registration -------------------------------------------------------------------------------

_REGISTERED = False


def register(torchair_module=None, comm_name: Optional[Callable[[str], str]] = None) -> bool:
    """Register both converters with torchair (the real one unless a module is given). Idempotent.

    `comm_name` replaces `runtime.groups.comm_name` (tests)."""
    global _REGISTERED
    if _REGISTERED:
        return True
    if torchair_module is None:
        import torchair as torchair_module  # noqa: PLC0415 - optional dependency
    ta = torchair_module

    @ta.register_fx_node_ge_converter(torch.ops.moe_mc2.npu_alltoall_allgather_bmm.default)
    def _convert(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                 shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False,
                 meta_outputs=None):
        return lower(ta.ge, x, weight, bias, group_ep=group_ep, group_ep_worldsize=group_ep_worldsize,
                     group_tp=group_tp, group_tp_worldsize=group_tp_worldsize, shard_type=shard_type,
                     act_type=act_type, need_allgather_out=need_allgather_out,
                     need_activation_feature=need_activation_feature, comm_name=comm_name)

    @ta.register_fx_node_ge_converter(torch.ops.moe_mc2.npu_bmm_reducescatter_alltoall.default)
    def _convert_adjoint(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                         shard_type=0, meta_outputs=None):
        return lower_adjoint(ta.ge, x, weight, bias, group_ep=group_ep, group_ep_worldsize=group_ep_worldsize,
                             group_tp=group_tp, group_tp_worldsize=group_tp_worldsize, shard_type=shard_type,
                             comm_name=comm_name)

    _REGISTERED = True
    return True


def _reset_for_tests():
    global _REGISTERED
    _REGISTERED = False
