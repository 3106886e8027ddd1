"""Exceptions raised for a broken rule: they name the op, the argument, the value and the rule."""
from __future__ import annotations


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ContractViolation(Exception):
    """Mixin carrying the machine-readable parts of a broken rule (see tests/vectors)."""

    def __init__(self, op: str, arg: str, value, rule_id: str, rule: str):
        self.op, self.arg, self.value, self.rule_id, self.rule = op, arg, value, rule_id, rule
        super().__init__(f"{op}: {arg}={_short(value)} breaks rule [{rule_id}]: {rule}")


class ContractValueError(ContractViolation, ValueError):
    pass


class ContractTypeError(ContractViolation, TypeError):
    pass


def _rebuild(cls, op, arg, value, rule_id, rule):
    return cls(op, arg, value, rule_id, rule)


def _reduce(self):
    # Exceptions travel between ranks of a local world; keep every field across pickling.
    return _rebuild, (type(self), self.op, self.arg, self.value, self.rule_id, self.rule)


ContractViolation.__reduce__ = _reduce
