"""Agreement before data moves: every call's signature, exchanged over both groups first.

A rank's **signature** is one row of int64: its world rank, a verdict on its own call (0 when its
local checks passed, else the broken rule and its message), the hashes of the ep and tp groups
it names, and every field a peer depends on (docs/contract.md, "Agreement"):

    op, group_ep_worldsize, group_tp_worldsize, shard_type, act_type, need_allgather_out,
    need_activation_feature, x.dtype, x.shape, x.device, weight.shape (logical), bias (present,
    logical shape), bias.dtype, the tile settings (MOE_MC2_TILES / MOE_MC2_EXPERT_TILES or
    forced_tiles; the adjoint's tile count), plan (a fingerprint of the tile plan)

The exchange: a zeroed (MAX_CELLS, ROW) table in which rank (i, t) writes its row at cell
t * ep + i, summed by one all_reduce over group_ep, then one over group_tp. In an ep x tp grid
(every ep group meets every tp group in exactly one rank) the first sum fills the rank's ep
group's cells and the second adds the other ep groups', so every rank ends with the same full
table and takes the same decision from it:

1. a rank whose verdict is not 0: every rank raises that rank's error (the lowest such world
   rank), with the rank and (i, t) in the message;
2. a cell written by no rank or by several: the groups are not a grid (rule ranks.grid);
3. a field whose value is not the same on every rank: every rank raises `RanksDisagree`
   (rule ranks.agree) naming the field and which ranks passed which value; the group hashes
   must agree inside each group.

The table has a fixed size whatever the groups are, so a rank that passes a wrong group cannot
make a peer's collective mismatch in size (gloo aborts the process on that). Nothing here
blocks longer than the group's timeout: a rank that never arrives turns into a CollectiveError
naming the group on its peers.

Switch: MOE_MC2_AGREEMENT=0 (or `set_enabled(False)`, on every rank alike) skips the exchange;
each rank then checks its own call only, as before.
"""
from __future__ import annotations

import contextlib
import zlib
from typing import Optional

import torch
import torch.distributed as dist

from ..contract.activations import display_name
from ..contract.errors import (CollectiveError, ContractTypeError, ContractValueError, ContractViolation,
                               RankFailed, RanksDisagree, ValueText)
from ..contract.names import ADJOINT_OP_NAME, OP_NAME
from ..contract.rule_ids import RULES
from ..contract.rules import dtype_name
from . import groups, settings

VERSION = 1
MAX_CELLS = 256  # ep x tp <= 16 x 16
MSG_WORDS = 32  # 256 bytes of a failing rank's message

OPS = {OP_NAME: 1, ADJOINT_OP_NAME: 2}
_OP_NAMES = {v: k for k, v in OPS.items()}
_DTYPES = {torch.float16: 1, torch.bfloat16: 2, torch.float32: 3}
_DTYPE_BY_CODE = {v: k for k, v in _DTYPES.items()}
_DEVICES = {"cpu": 1, "cuda": 2, "npu": 3, "meta": 4}
_DEVICE_BY_CODE = {v: k for k, v in _DEVICES.items()}
_RULE_INDEX = {r: n + 1 for n, r in enumerate(sorted(RULES))}

# header: cell count, world rank, protocol version, verdict, rule index, ep/tp group hashes
H_COUNT, H_RANK, H_VERSION, H_VERDICT, H_RULE, H_EP, H_TP = range(7)
HEADER = 7
OK, VALUE_ERROR, TYPE_ERROR, OTHER_ERROR = 0, 1, 2, 3


def _fmt_op(v):
    return _OP_NAMES.get(v[0], f"op #{v[0]}")


def _fmt_int(v):
    return str(v[0])


def _fmt_bool(v):
    return str(bool(v[0]))


def _fmt_act(v):
    try:
        return repr(display_name(v[0]))
    except ValueError:
        return str(v[0])


def _fmt_dtype(v):
    return dtype_name(_DTYPE_BY_CODE[v[0]]) if v[0] in _DTYPE_BY_CODE else f"dtype #{v[0]}"


def _fmt_shape(v):
    return str(tuple(v))


def _fmt_device(v):
    return _DEVICE_BY_CODE.get(v[0], f"device #{v[0]}")


def _fmt_bias(v):
    return "None" if not v[0] else f"(El, N) = {tuple(v[1:])}"


def _fmt_tiles(v):
    return "unset" if not v[0] else str(v[0])


def _fmt_plan(v):
    return f"plan #{v[0]:08x}"


# (field, width, formatter), compared in this order; the field is what an error names
FIELDS = (
    ("op", 1, _fmt_op),
    ("group_ep_worldsize", 1, _fmt_int),
    ("group_tp_worldsize", 1, _fmt_int),
    ("shard_type", 1, _fmt_int),
    ("act_type", 1, _fmt_act),
    ("need_allgather_out", 1, _fmt_bool),
    ("need_activation_feature", 1, _fmt_bool),
    ("x.dtype", 1, _fmt_dtype),
    ("x.shape", 3, _fmt_shape),
    ("x.device", 1, _fmt_device),
    ("weight.shape", 3, _fmt_shape),
    ("bias", 3, _fmt_bias),
    ("bias.dtype", 1, lambda v: "None" if not v[0] else _fmt_dtype(v)),
    ("MOE_MC2_TILES (or forced_tiles / tiles)", 1, _fmt_tiles),
    ("MOE_MC2_EXPERT_TILES (or forced_tiles)", 1, _fmt_tiles),
    ("plan", 1, _fmt_plan),
)
_SLICES = []
_at = HEADER
for _name, _width, _fmt in FIELDS:
    _SLICES.append((_name, _at, _at + _width, _fmt))
    _at += _width
M_START = _at
ROW = M_START + MSG_WORDS

_WHY = {
    "plan": "the tile plan differs although the call agrees: a rank plans from something other than the call",
    "group_ep": "each rank of an ep group must name that same group as group_ep",
    "group_tp": "each rank of a tp group must name that same group as group_tp",
}
_SAME_CALL = "every rank must make the same call (apart from the tensors' values and memory layouts)"

# -- the switch -------------------------------------------------------------------------------

_override: Optional[bool] = None


def set_enabled(on: Optional[bool]) -> None:
    """Turn the agreement on or off for this process (None: follow MOE_MC2_AGREEMENT). Every
    rank must choose alike: a rank that skips it would meet its peers' exchange with data."""
    global _override
    _override = on


@contextlib.contextmanager
def enabled_as(on: Optional[bool]):
    old = _override
    set_enabled(on)
    try:
        yield
    finally:
        set_enabled(old)


def is_enabled(op: str = OP_NAME) -> tuple:
    """(on, error of an invalid MOE_MC2_AGREEMENT)."""
    if _override is not None:
        return _override, None
    return settings.agreement(op)


# -- building a row ---------------------------------------------------------------------------

_HASHES: dict = {}


def _hash(text: str) -> int:
    h = _HASHES.get(text)
    if h is None:
        h = _HASHES[text] = zlib.crc32(text.encode()) + 1
    return h


def fingerprint(obj) -> int:
    """A stable (per process and across processes) hash of a plan's repr-able description."""
    return zlib.crc32(repr(obj).encode())


def shape3(shape) -> list:
    return [int(d) for d in shape]


def signature(op, *, ep, tp, shard_type, act_type=0, y2=False, y3=False, x, weight_shape, bias, tiles=None,
              expert_tiles=None, plan=0) -> list:
    """This rank's fields (FIELDS order) for a call that passed its local checks."""
    bias_fields = [0, 0, 0] if bias is None else [1, int(bias.shape[0]), int(bias.shape[-1])]
    return ([OPS[op], ep, tp, shard_type, act_type, int(bool(y2)), int(bool(y3)), _DTYPES.get(x.dtype, 99)]
            + shape3(x.shape) + [_DEVICES.get(x.device.type, 99)] + shape3(weight_shape) + bias_fields
            + [0 if bias is None else _DTYPES.get(bias.dtype, 99), tiles or 0, expert_tiles or 0, plan])


def _message_words(text: str) -> list:
    data = text.encode("utf-8")[: MSG_WORDS * 8]
    data = data + b"\0" * (MSG_WORDS * 8 - len(data))
    return [int.from_bytes(data[k:k + 8], "little", signed=True) for k in range(0, len(data), 8)]


def _message_text(words) -> str:
    data = b"".join(int(w).to_bytes(8, "little", signed=True) for w in words)
    return data.rstrip(b"\0").decode("utf-8", errors="ignore")


_SEP = "\x1f"


def _failure(exc: BaseException) -> tuple:
    """(verdict, rule index, message words) describing a local failure."""
    if isinstance(exc, ContractViolation):
        verdict = TYPE_ERROR if isinstance(exc, TypeError) else VALUE_ERROR
        value = exc.value if isinstance(exc.value, ValueText) else ValueText(_short(exc.value))
        text = _SEP.join((exc.arg, str(value), exc.rule))
        return verdict, _RULE_INDEX[exc.rule_id], _message_words(text)
    return OTHER_ERROR, 0, _message_words(f"{type(exc).__name__}: {exc}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- the exchange -----------------------------------------------------------------------------

def _size(pg) -> int:
    return 1 if pg is None else dist.get_world_size(pg)


def _index(pg) -> int:
    return 0 if pg is None else dist.get_rank(pg)


def _device(pg) -> torch.device:
    """Where the table lives: CPU for gloo (also for mixed cpu:gloo,cuda:nccl groups), else the
    backend's device."""
    name = groups.backend_name(pg)
    if name == "gloo":
        return torch.device("cpu")
    if name == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("npu", torch.npu.current_device())  # pragma: no cover - needs torch_npu


_TABLES: dict = {}


def _table(device) -> torch.Tensor:
    """The zeroed exchange table of a device (one per device, reused: the exchange is synchronous)."""
    table = _TABLES.get(device)
    if table is None:
        table = _TABLES[device] = torch.zeros((MAX_CELLS, ROW), dtype=torch.int64, device=device)
    else:
        table.zero_()
    return table


def _exchange(op: str, row: list, pg_ep, pg_tp):
    """The summed table (cells of this call's ep x tp grid, as a list of rows), and the number
    of nonzero entries outside those cells."""
    ep, tp = _size(pg_ep), _size(pg_tp)
    cell = min(_index(pg_tp) * ep + _index(pg_ep), MAX_CELLS - 1)
    table = _table(_device(pg_ep))
    table[cell] = torch.tensor(row, dtype=torch.int64)
    for arg, pg in (("group_ep", pg_ep), ("group_tp", pg_tp)):
        if pg is None or dist.get_world_size(pg) == 1:
            continue
        try:
            dist.all_reduce(table, group=pg)
        except Exception as exc:
            raise CollectiveError(op, arg, pg.group_name, dist.get_process_group_ranks(pg),
                                  "agreeing on the call (signature exchange)", str(exc).strip()) from exc
    cells = min(ep * tp, MAX_CELLS)
    table = table.cpu()
    stray = int(table[cells:, H_COUNT].count_nonzero()) if cells < MAX_CELLS else 0
    return table[:cells].tolist(), ep, tp, stray


def _where(rows, ep, n) -> str:
    r = rows[n]
    return f"rank {r[H_RANK]} (i={n % ep}, t={n // ep})"


def _decide(op: str, rows, ep: int, tp: int, stray: int) -> Optional[BaseException]:
    """The error every rank raises for this table, None when the call may proceed."""
    first = rows[0]
    if (not stray and all(r[H_COUNT] == 1 and r[H_VERDICT] == OK and r[HEADER:M_START] == first[HEADER:M_START]
                          for r in rows)
            and all(r[H_EP] == rows[n // ep * ep][H_EP] and r[H_TP] == rows[n % ep][H_TP]
                    for n, r in enumerate(rows))):
        return None  # the usual case, decided in one pass
    clean = [n for n, r in enumerate(rows) if r[H_COUNT] == 1]
    failing = sorted((rows[n][H_RANK], n) for n in clean if rows[n][H_VERDICT] != OK)
    if failing:
        return _rebuild_failure(op, rows, ep, failing)
    bad = [n for n, r in enumerate(rows) if r[H_COUNT] != 1]
    if bad or stray:
        seen = sorted(rows[n][H_RANK] for n in clean)
        detail = (f"cells (i, t) {[(n % ep, n // ep) for n in bad]} were taken by "
                  f"{[rows[n][H_COUNT] for n in bad]} ranks" if bad else f"{stray} ranks fell outside the grid")
        return ContractValueError(op, "group_ep/group_tp", ValueText(f"{ep} x {tp} from world ranks {seen}"),
                                  "ranks.grid", f"the groups must form an ep x tp grid (each ep group meets each "
                                                f"tp group in one rank): {detail}")
    for name, a, b, fmt in _SLICES:
        values = [tuple(r[a:b]) for r in rows]
        if any(v != values[0] for v in values):
            return _disagree(op, name, rows, values, range(len(rows)), fmt, _WHY.get(name, _SAME_CALL))
    for arg, col, key in (("group_ep", H_EP, lambda n: n // ep), ("group_tp", H_TP, lambda n: n % ep)):
        by_group: dict = {}
        for n, r in enumerate(rows):
            by_group.setdefault(key(n), []).append(n)
        for members in by_group.values():
            values = {n: (rows[n][col],) for n in members}
            if len(set(values.values())) > 1:
                return _disagree(op, arg, rows, [values.get(n) for n in range(len(rows))], members,
                                 lambda v: f"group #{v[0]:08x}", _WHY[arg])
    return None


def _disagree(op, arg, rows, values, members, fmt, why) -> RanksDisagree:
    by_value: dict = {}
    for n in members:
        by_value.setdefault(values[n], []).append(rows[n][H_RANK])
    parts = [f"{fmt(list(v))} on rank{'s' if len(rk) > 1 else ''} {sorted(rk)}"
             for v, rk in sorted(by_value.items(), key=lambda kv: min(kv[1]))]
    return RanksDisagree(op, arg, ValueText("; ".join(parts)), "ranks.agree", why)


def _rebuild_failure(op, rows, ep, failing) -> BaseException:
    rank, n = failing[0]
    r = rows[n]
    others = [rk for rk, _ in failing[1:]]
    where = _where(rows, ep, n) + (f", and ranks {others} too" if others else "")
    text = _message_text(r[M_START:M_START + MSG_WORDS])
    if r[H_VERDICT] == OTHER_ERROR:
        return RankFailed(op, f"{where} failed its call's checks: {text}; every rank of this call raises this error")
    parts = text.split(_SEP)
    arg, value, rule = (parts + ["?", "?", "?"])[:3]
    rule_id = next((k for k, v in _RULE_INDEX.items() if v == r[H_RULE]), None)
    cls = ContractTypeError if r[H_VERDICT] == TYPE_ERROR else ContractValueError
    rule = f"{rule} (on {where}; every rank of this call raises this error)"
    return cls(op, arg, ValueText(value), rule_id, rule)


# -- the two entry points -----------------------------------------------------------------------

def confirm(op: str, fields: list, pg_ep, pg_tp) -> None:
    """A call that passed its local checks: exchange, and raise what the table says (if anything)."""
    row = [1, dist.get_rank(), VERSION, OK, 0, _hash(pg_ep.group_name), _hash(pg_tp.group_name)] + fields
    row += [0] * MSG_WORDS
    rows, ep, tp, stray = _exchange(op, row, pg_ep, pg_tp)
    error = _decide(op, rows, ep, tp, stray)
    if error is not None:
        raise error


def reject(op: str, exc: BaseException, group_ep, group_tp):
    """A call that failed its local checks: take part in the exchange where this rank can (so its
    peers raise too, instead of waiting in their first collective), then raise the agreed error
    (caused by `exc`). Without the agreement, or without a group to exchange on, raise `exc`."""
    on, _ = is_enabled(op)
    if not on or not isinstance(exc, Exception):
        raise exc
    pg_ep, pg_tp = groups.find(group_ep), groups.find(group_tp)
    if pg_ep is None or pg_tp is None or pg_ep is pg_tp:
        # A rank that cannot name both of its groups cannot reach all of its peers: it raises at
        # once; peers waiting in the group it could not name get a CollectiveError at their timeout.
        raise exc
    verdict, rule, words = _failure(exc)
    row = [1, dist.get_rank(), VERSION, verdict, rule, _hash(pg_ep.group_name), _hash(pg_tp.group_name)]
    row += [0] * (M_START - HEADER) + words
    rows, ep, tp, stray = _exchange(op, row, pg_ep, pg_tp)
    error = _decide(op, rows, ep, tp, stray)
    raise (error if error is not None else exc) from exc
