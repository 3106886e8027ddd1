"""The environment settings the portable runtime reads, each checked and named in its errors.

  MOE_MC2_TILES         row chunks per expert block of the forward plan (positive int; unset: planned)
  MOE_MC2_EXPERT_TILES  expert parts per expert block of the forward plan (positive int; unset: planned)
  MOE_MC2_AGREEMENT     1 (default) / 0: the agreement of every call across ranks (runtime/agreement.py)

Settings are per process, so ranks can differ: the tile settings travel in each call's
signature and a difference is an error on every rank (rule ranks.agree). MOE_MC2_AGREEMENT
decides whether signatures are exchanged at all, so it must be the same on every rank (a
launcher sets it for all); an invalid value keeps the agreement on and fails the call.
"""
from __future__ import annotations

import os
from typing import Optional

from ..contract.errors import ContractValueError

TILES = "MOE_MC2_TILES"
EXPERT_TILES = "MOE_MC2_EXPERT_TILES"
AGREEMENT = "MOE_MC2_AGREEMENT"

_ON = {"1", "on", "true", "yes"}
_OFF = {"0", "off", "false", "no"}


def positive_int(op: str, name: str) -> Optional[int]:
    """The positive int a variable holds, None where it is unset or empty."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip(), 10)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise ContractValueError(op, name, text, "env.value",
                                 "must be a positive integer (a tile count), or unset to let the planner choose")
    return value


def agreement(op: str) -> tuple:
    """(on, error): whether calls agree across ranks, and the error of an invalid value (then on)."""
    text = os.environ.get(AGREEMENT)
    if text is None or not text.strip():
        return True, None
    word = text.strip().lower()
    if word in _ON:
        return True, None
    if word in _OFF:
        return False, None
    return True, ContractValueError(op, AGREEMENT, text, "env.value",
                                    "must be 1 (agree on every call, the default) or 0 (skip the agreement)")
