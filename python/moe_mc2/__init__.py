"""moe_mc2: the fused MoE operator npu_alltoall_allgather_bmm, everywhere.

AllToAll over the expert-parallel group -> AllGather over the tensor-parallel group ->
batched matmul -> bias -> activation, with communication hidden behind computation.
Semantics: SPEC.md. Importing registers `torch.ops.moe_mc2.*` (and, where torchair or
torch_npu is importable, the graph converter and the NPU kernel).
"""
from . import ops as _ops
from .contract.activations import Act
from .contract.errors import ContractTypeError, ContractValueError, ContractViolation
from .ops import npu_alltoall_allgather_bmm

__all__ = ["npu_alltoall_allgather_bmm", "Act", "ContractViolation", "ContractValueError", "ContractTypeError"]

__version__ = "0.1.0"
