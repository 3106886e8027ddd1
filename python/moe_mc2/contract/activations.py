"""Activation table of the contract (docs/contract.md): the Ascend C kernel formulas, not torch defaults."""
from __future__ import annotations

import enum

import torch

from .errors import ContractTypeError, ContractValueError


class Act(enum.IntEnum):
    NONE = 0
    GELU = 1
    SILU = 2
    RELU = 3
    FASTGELU = 4


_BY_NAME = {a.name.lower(): a for a in Act}
_DISPLAY = {Act.NONE: "None", Act.GELU: "GELU", Act.SILU: "Silu", Act.RELU: "Relu", Act.FASTGELU: "FastGELU"}
NAMES = tuple(_DISPLAY[a] for a in Act)

_GELU_K = 1.59576912  # 2*sqrt(2/pi), the constant of the Ascend C Gelu (tanh form)
_FASTGELU_K = 1.702


def display_name(act: int) -> str:
    return _DISPLAY[Act(act)]


def parse_act_type(value, *, op: str = "npu_alltoall_allgather_bmm") -> int:
    """Map a case-insensitive name or an int 0-4 to the int code; reject anything else."""
    rule = f"one of {', '.join(repr(n) for n in NAMES)} (any case) or an int 0-4"
    if isinstance(value, bool):
        raise ContractTypeError(op, "act_type", value, "act_type.value", rule)
    if value is None:
        return int(Act.NONE)
    if isinstance(value, str):
        act = _BY_NAME.get(value.strip().lower())
        if act is None:
            raise ContractValueError(op, "act_type", value, "act_type.value", rule)
        return int(act)
    if isinstance(value, int):
        if value not in Act._value2member_map_:
            raise ContractValueError(op, "act_type", value, "act_type.value", rule)
        return int(value)
    raise ContractTypeError(op, "act_type", value, "act_type.value", rule)


def apply(y: torch.Tensor, act: int) -> torch.Tensor:
    """act(y), evaluated in y's dtype, differentiable (the reference and autograd tests use it).

    The same formulas as `apply_into`; tests/test_reference_and_planner.py holds both to the contract.
    """
    act = Act(act)
    if act is Act.NONE:
        return y
    if act is Act.GELU:
        return y * torch.sigmoid(_GELU_K * (y + 0.044715 * y * y * y))
    if act is Act.SILU:
        return y * torch.sigmoid(y)
    if act is Act.RELU:
        return torch.relu(y)
    return y * torch.sigmoid(_FASTGELU_K * y)


def apply_into(y: torch.Tensor, act: int, out: torch.Tensor) -> torch.Tensor:
    """out = act(y) for the runtime's epilogue: computed in y's dtype with one temporary and
    rounded once into out's dtype; y is left unchanged. Not differentiable (out= calls)."""
    act = Act(act)
    if act is Act.NONE:
        return out.copy_(y)
    if act is Act.RELU:
        return torch.clamp_min(y, 0, out=out) if out.dtype == y.dtype else out.copy_(y.clamp_min(0))
    gate = torch.empty_like(y)
    if act is Act.GELU:  # sigmoid(K (y + 0.044715 y^3)) = sigmoid(y (K + 0.044715 K y^2))
        torch.mul(y, y, out=gate)
        gate.mul_(0.044715 * _GELU_K).add_(_GELU_K).mul_(y)
    elif act is Act.SILU:
        gate.copy_(y)
    else:  # FastGELU: sigmoid(1.702 y)
        torch.mul(y, _FASTGELU_K, out=gate)
    gate.sigmoid_()
    return torch.mul(y, gate, out=out)


def derivative(y: torch.Tensor, act: int) -> torch.Tensor:
    """d act(y) / dy, elementwise, in y's dtype (callers pass float32)."""
    act = Act(act)
    if act is Act.NONE:
        return torch.ones_like(y)
    if act is Act.RELU:
        return (y > 0).to(y.dtype)
    if act is Act.SILU:
        s = torch.sigmoid(y)
        return s * (1 + y * (1 - s))
    if act is Act.FASTGELU:
        s = torch.sigmoid(_FASTGELU_K * y)
        return s * (1 + _FASTGELU_K * y * (1 - s))
    u = _GELU_K * (y + 0.044715 * y * y * y)
    s = torch.sigmoid(u)
    du = _GELU_K * (1 + 3 * 0.044715 * y * y)
    return s + y * s * (1 - s) * du
