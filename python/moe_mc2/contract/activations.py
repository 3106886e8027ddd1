"""Activation table of SPEC.md: the Ascend C kernel formulas, not torch defaults."""
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
    """act(y), evaluated in y's dtype (callers pass float32)."""
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
