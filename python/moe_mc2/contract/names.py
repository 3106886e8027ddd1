"""Names the Python side shares with GE (op_proto REG_OP, op_host OpDef, torchair).

One source of truth in Python; tests/test_conformance.py checks the C++ files agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OP_NAME = "npu_alltoall_allgather_bmm"
ADJOINT_OP_NAME = "npu_bmm_reducescatter_alltoall"
LIBRARY = "moe_mc2"

GE_OP_TYPE = "AlltoAllAllGatherBatchMatMul"
GE_INPUTS = ("x", "weight", "bias")
GE_OPTIONAL_INPUTS = ("bias",)
GE_OUTPUTS = ("y1", "y2", "y3")


@dataclass(frozen=True)
class GeAttr:
    name: str
    kind: str  # "str" | "int" | "bool"
    required: bool
    default: Any = None


GE_ATTRS = (
    GeAttr("group_ep", "str", True),
    GeAttr("group_tp", "str", True),
    GeAttr("ep_world_size", "int", True),
    GeAttr("tp_world_size", "int", True),
    GeAttr("x_shard_type", "int", False, 0),
    GeAttr("act_type", "int", False, 0),
    GeAttr("transpose_weight", "bool", False, False),
    GeAttr("output_y2_flag", "bool", False, False),
    GeAttr("output_y3_flag", "bool", False, False),
)

# The generated aclnn entry points of the OPP package.
ACLNN_GET_WORKSPACE = "aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize"
ACLNN_RUN = "aclnnAlltoAllAllGatherBatchMatMul"

# The adjoint op lowers to CANN's built-in BatchMatMulReduceScatterAlltoAll (this project ships
# no OPP for it): its GE prototype and its aclnn entry points, as CANN publishes them.
ADJOINT_GE_OP_TYPE = "BatchMatMulReduceScatterAlltoAll"
ADJOINT_GE_INPUTS = ("x", "weight", "bias")
ADJOINT_GE_OPTIONAL_INPUTS = ("bias",)
ADJOINT_GE_OUTPUTS = ("y",)
ADJOINT_GE_ATTRS = (
    GeAttr("group_ep", "str", True),
    GeAttr("group_tp", "str", True),
    GeAttr("ep_world_size", "int", True),
    GeAttr("tp_world_size", "int", True),
    GeAttr("y_shard_type", "int", False, 0),
    GeAttr("transpose_weight", "bool", False, False),
)
ADJOINT_ACLNN_GET_WORKSPACE = "aclnnBatchMatMulReduceScatterAlltoAllGetWorkspaceSize"
ADJOINT_ACLNN_RUN = "aclnnBatchMatMulReduceScatterAlltoAll"
