"""moe_mc2: the fused MoE operator npu_alltoall_allgather_bmm, everywhere.

AllToAll over the expert-parallel group -> AllGather over the tensor-parallel group ->
batched matmul -> bias -> activation, with communication hidden behind computation.
Semantics, rules and the agreement across ranks: docs/contract.md. Importing registers `torch.ops.moe_mc2.*` (and, where torchair or
torch_npu is importable, the graph converter and the NPU kernel).
"""
from . import ops as _ops
from .contract.activations import Act
from .contract.errors import (CollectiveError, ContractTypeError, ContractValueError, ContractViolation, RankFailed,
                              RanksDisagree)
from .ops import npu_alltoall_allgather_bmm
from .runtime.agreement import set_enabled as set_agreement

__all__ = ["npu_alltoall_allgather_bmm", "Act", "ContractViolation", "ContractValueError", "ContractTypeError",
           "RanksDisagree", "RankFailed", "CollectiveError", "set_agreement"]

__version__ = "0.1.0"

# The adjoint op (npu_bmm_reducescatter_alltoall), autograd of both ops, the ExpertMLP module.
from . import adjoint_ops as _adjoint_ops  # noqa: E402
from . import autograd as _autograd  # noqa: E402
from .adjoint_ops import npu_bmm_reducescatter_alltoall  # noqa: E402
from .nn import ExpertMLP  # noqa: E402

__all__ += ["npu_bmm_reducescatter_alltoall", "ExpertMLP"]
from .integration import register_all as _register_integrations; _register_integrations()  # noqa: E402,E702
