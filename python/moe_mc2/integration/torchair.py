"""Lowering of `moe_mc2::npu_alltoall_allgather_bmm` to the fused GE node inside torchair graphs.

`lower(ge, ...)` builds the node through nothing but torchair's public `ge` surface
(`custom_op`, `attr.Str/Int/Bool/ListInt`, `DataType`, tensors carrying `.dtype` and `.meta`),
so tests drive it with a stand-in `ge` module; `register()` hooks it into torchair when torchair
is importable. Names and defaults come from contract/names.py, the dtype rules from
contract/rules.py, so the GE node cannot drift from the eager op.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..contract import rules
from ..contract.names import GE_ATTRS, GE_INPUTS, GE_OP_TYPE, GE_OUTPUTS, OP_NAME

# torch dtype <-> the attribute of ge.DataType naming it (torchair's DataType is a plain class
# of ints, so it is looked up by name on whatever `ge` module is in use).
_GE_DTYPE_NAMES = {
    torch.float16: "DT_FLOAT16",
    torch.bfloat16: "DT_BF16",
    torch.float32: "DT_FLOAT",
    torch.float64: "DT_DOUBLE",
    torch.int8: "DT_INT8",
    torch.int32: "DT_INT32",
    torch.int64: "DT_INT64",
}

# The weight of a transpose_weight node is the (El, M/tp, H) tensor as stored; the FX value is its
# (El, H, M/tp) view. Swapping the last two dims again hands the node the stored layout (GE folds
# the pair with the Transpose that produced the view, so the kernel reads the weight in place).
_SWAP_LAST_TWO = [0, 2, 1]


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


def weight_is_transposed(weight) -> bool:
    """True when the FX weight is `w.transpose(1, 2)` of a contiguous (El, M/tp, H) tensor.

    Converters see strides only through the meta (fake) tensor torchair attaches to each ge
    tensor; without one the GE tensor is dense in its logical shape, i.e. not transposed.
    """
    meta = getattr(weight, "meta", None)
    if not isinstance(meta, torch.Tensor):
        return False
    try:
        return bool(rules.is_transposed_weight(meta))
    except Exception:  # symbolic strides that cannot be decided: the dense reading is always valid
        return False


def check_dtypes(x_dtype, weight_dtype, bias_dtype) -> None:
    """SPEC's dtype rules as the NPU applies them (no float32 x), with the eager op's messages."""
    chk = rules.Checker(OP_NAME)
    chk.x_dtype(x_dtype, portable=False)
    chk.weight_dtype(weight_dtype, x_dtype)
    if bias_dtype is not None:
        chk.bias_dtype(bias_dtype, x_dtype)


def attr_values(*, comm_ep: str, comm_tp: str, ep: int, tp: int, shard_type: int, act_type: int,
                transpose_weight: bool, need_allgather_out: bool, need_activation_feature: bool) -> dict:
    """Every GE attribute's value, keyed by its GE name."""
    want_y2, want_y3 = rules.output_flags(need_allgather_out, need_activation_feature, act_type)
    values = {
        "group_ep": comm_ep, "group_tp": comm_tp, "ep_world_size": ep, "tp_world_size": tp,
        "x_shard_type": shard_type, "act_type": act_type, "transpose_weight": bool(transpose_weight),
        "output_y2_flag": want_y2, "output_y3_flag": want_y3,
    }
    missing = {a.name for a in GE_ATTRS} ^ set(values)
    if missing:  # names.py and this table disagree: a programming error, not a user error
        raise AssertionError(f"GE attributes without a value or unknown to names.py: {sorted(missing)}")
    return values


def typed_attrs(ge, values: dict) -> dict:
    kinds = {"str": ge.attr.Str, "int": ge.attr.Int, "bool": ge.attr.Bool}
    return {a.name: kinds[a.kind](values[a.name]) for a in GE_ATTRS}


def lower(ge, x, weight, bias=None, *, group_ep: str, group_ep_worldsize: int, group_tp: str,
          group_tp_worldsize: int, shard_type: int = 0, act_type: int = 0, need_allgather_out: bool = False,
          need_activation_feature: bool = False, comm_name: Callable[[str], str] = str):
    """Emit the AlltoAllAllGatherBatchMatMul node; returns its (y1, y2, y3) ge tensors.

    `comm_name` maps the op's group names (ProcessGroup.group_name) to the HCCL communicator
    names GE resolves at run time.
    """
    x_dtype, w_dtype = torch_dtype(ge, x), torch_dtype(ge, weight)
    check_dtypes(x_dtype, w_dtype, None if bias is None else torch_dtype(ge, bias))
    transposed = weight_is_transposed(weight)
    if transposed:
        weight = ge.custom_op("TransposeD", inputs={"x": weight}, outputs=["y"],
                              attrs={"perm": ge.attr.ListInt(_SWAP_LAST_TWO)})
    values = attr_values(comm_ep=comm_name(group_ep), comm_tp=comm_name(group_tp), ep=group_ep_worldsize,
                         tp=group_tp_worldsize, shard_type=shard_type, act_type=act_type,
                         transpose_weight=transposed, need_allgather_out=need_allgather_out,
                         need_activation_feature=need_activation_feature)
    given = {"x": x, "weight": weight, "bias": bias}
    return ge.custom_op(GE_OP_TYPE, inputs={name: given[name] for name in GE_INPUTS},
                        outputs=list(GE_OUTPUTS), attrs=typed_attrs(ge, values))


_REGISTERED = False


def register(torchair_module=None, comm_name: Optional[Callable[[str], str]] = None) -> bool:
    """Register the converter with torchair (the real one unless a module is given). Idempotent."""
    global _REGISTERED
    if _REGISTERED:
        return True
    if torchair_module is None:
        import torchair as torchair_module  # noqa: PLC0415 - optional dependency
    if comm_name is None:
        from .npu import hccl_comm_name as comm_name  # noqa: PLC0415
    ta = torchair_module

    @ta.register_fx_node_ge_converter(torch.ops.moe_mc2.npu_alltoall_allgather_bmm.default)
    def _convert(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                 shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False,
                 meta_outputs=None):
        return lower(ta.ge, x, weight, bias, group_ep=group_ep, group_ep_worldsize=group_ep_worldsize,
                     group_tp=group_tp, group_tp_worldsize=group_tp_worldsize, shard_type=shard_type,
                     act_type=act_type, need_allgather_out=need_allgather_out,
                     need_activation_feature=need_activation_feature, comm_name=comm_name)

    _REGISTERED = True
    return True


def _reset_for_tests():
    global _REGISTERED
    _REGISTERED = False
