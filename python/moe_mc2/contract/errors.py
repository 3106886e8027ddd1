"""Exceptions raised for a broken rule: they name the op, the argument, the value and the rule."""
from __future__ import annotations

from .rule_ids import RULES


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ValueText(str):
    """A value known only by its printed form (a peer rank's value): repr() is the text itself."""

    def __repr__(self) -> str:
        return str(self)


class ContractViolation(Exception):
    """Mixin carrying the machine-readable parts of a broken rule (see tests/vectors)."""

    def __init__(self, op: str, arg: str, value, rule_id: str, rule: str):
        assert rule_id in RULES, f"rule id {rule_id!r} is not listed in contract/rule_ids.py"
        self.op, self.arg, self.value, self.rule_id, self.rule = op, arg, value, rule_id, rule
        super().__init__(self._message())

    def _message(self) -> str:
        return f"{self.op}: {self.arg}={_short(self.value)} breaks rule [{self.rule_id}]: {self.rule}"


class ContractValueError(ContractViolation, ValueError):
    pass


class ContractTypeError(ContractViolation, TypeError):
    pass


class RanksDisagree(ContractValueError):
    """The ranks of one call passed different calls (rule ranks.agree); `value` lists each
    distinct value with the world ranks that passed it."""

    def _message(self) -> str:
        return f"{self.op}: the ranks disagree on {self.arg}: {self.value} [rule {self.rule_id}]: {self.rule}"


def _rebuild(cls, op, arg, value, rule_id, rule):
    return cls(op, arg, value, rule_id, rule)


def _reduce(self):
    # Exceptions travel between ranks of a local world; keep every field across pickling.
    return _rebuild, (type(self), self.op, self.arg, self.value, self.rule_id, self.rule)


ContractViolation.__reduce__ = _reduce


class CollectiveError(RuntimeError):
    """A collective of the op failed or timed out; names the op, the group argument and the group."""

    def __init__(self, op: str, arg: str, group: str, ranks, phase: str, cause: str):
        self.op, self.arg, self.group, self.ranks, self.phase, self.cause = op, arg, group, ranks, phase, cause
        super().__init__(
            f"{op}: {arg} {group!r} (world ranks {list(ranks)}) failed while {phase}: {cause}. A peer did not "
            f"arrive within the group's timeout (it raised before the call, skipped it, or died); the "
            f"group cannot be trusted for further collectives")

    def __reduce__(self):
        return CollectiveError, (self.op, self.arg, self.group, self.ranks, self.phase, self.cause)


class RankFailed(RuntimeError):
    """A peer rank failed its call's local checks with an error that is not a rule violation."""

    def __init__(self, op: str, text: str):
        self.op, self.text = op, text
        super().__init__(f"{op}: {text}")

    def __reduce__(self):
        return RankFailed, (self.op, self.text)
