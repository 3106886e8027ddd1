"""Agreement before data moves: every call's signature, exchanged over both groups first.

A rank's **signature** is one row of int64: its world rank, a verdict on its own call (0 when its
local checks passed, else the broken rule and its message), the hashes of the ep and tp groups
it names, and every field a peer depends on (docs/contract.md, "Agreement"):

    op, group_ep_worldsize, group_tp_worldsize, shard_type, act_type, need_allgather_out,
    need_activation_feature, x.dtype, x.shape, x.device, weight.shape (logical), bias (present,
    logical shape), bias.dtype, the tile settings (MOE_MC2_TILES / MOE_MC2_EXPERT_TILES or
    forced_tiles; the adjoint's tile count), plan (a fingerprint of the tile plan)

The exchange, before any data collective: an all_gather of the row over group_ep, then an
all_gather over group_tp of that ep group's rows (padded to MAX_GROUP rows). In an ep x tp grid
(every ep group meets every tp group in exactly one rank) every rank ends with every rank's row,
in the same (t, i) order, and takes the same decision from them:

1. a rank whose verdict is not 0: every rank raises that rank's error (the lowest such world
   rank), with the rank and its (i, t) in the message;
2. a row missing, or a rank found where its own (i, t) says it is not: the groups are not a grid
   (rule ranks.grid);
3. a field whose value is not the same on every rank: every rank raises `RanksDisagree`
   (rule ranks.agree) naming the field and which ranks passed which value; the group hashes
   must agree inside each group.

Each rank sends the same number of bytes in each all_gather whatever groups it was given, so no
rank can make a peer's collective mismatch in size (gloo aborts the process on that). Nothing
here waits longer than the group's timeout: a rank that never arrives turns into a
CollectiveError naming the group on its peers.

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
from . import collectives, groups, settings

VERSION = 1
MAX_GROUP = 16  # ranks per group the tp step carries for each ep group (ep <= 16)
MSG_WORDS = 32  # 256 bytes of a failing rank's message

OPS = {OP_NAME: 1, ADJOINT_OP_NAME: 2}
_OP_NAMES = {v: k for k, v in OPS.items()}
_DTYPES = {torch.float16: 1, torch.bfloat16: 2, torch.float32: 3}
_DTYPE_BY_CODE = {v: k for k, v in _DTYPES.items()}
_DEVICES = {"cpu": 1, "cuda": 2, "npu": 3, "meta": 4}
_DEVICE_BY_CODE = {v: k for k, v in _DEVICES.items()}
_RULE_INDEX = {r: n + 1 for n, r in enumerate(sorted(RULES))}

# header: present, world rank, protocol version, verdict, rule index, ep/tp group hashes, the
# rank's own indices i (in its ep group) and t (in its tp group)
H_PRESENT, H_RANK, H_VERSION, H_VERDICT, H_RULE, H_EP, H_TP, H_I, H_T = range(9)
HEADER = 9
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


# what runs the call's collectives: the portable pipeline, or a fused NPU kernel through aclnn
KERNELS = {"portable": 0, "package": 1, "builtin": 2}
_KERNEL_NAMES = {0: "the portable pipeline", 1: "the moe_mc2 OPP package's kernel", 2: "CANN's built-in kernel"}


def _fmt_kernel(v):
    return _KERNEL_NAMES.get(v[0], f"kernel #{v[0]}")


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
    ("kernel", 1, _fmt_kernel),
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
    "kernel": ("every rank must run the call on the same kernel: install the same moe_mc2 OPP package and CANN "
               "on every host (moe_mc2.integration.npu.describe_routes() says what a rank found)"),
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
              expert_tiles=None, plan=0, kernel="portable") -> list:
    """This rank's fields (FIELDS order) for a call that passed its local checks."""
    bias_fields = [0, 0, 0] if bias is None else [1, int(bias.shape[0]), int(bias.shape[-1])]
    return ([OPS[op], ep, tp, shard_type, act_type, int(bool(y2)), int(bool(y3)), _DTYPES.get(x.dtype, 99)]
            + shape3(x.shape) + [_DEVICES.get(x.device.type, 99)] + shape3(weight_shape) + bias_fields
            + [0 if bias is None else _DTYPES.get(bias.dtype, 99), tiles or 0, expert_tiles or 0, plan,
               KERNELS[kernel]])


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


def _device(pg) -> torch.device:
    """Where the table lives: CPU for gloo (also for mixed cpu:gloo,cuda:nccl groups), else the
    backend's device."""
    try:
        name = str(dist.get_backend(pg)).lower()
    except Exception:  # a backend torch cannot name: try the CPU
        name = "gloo"
    if "gloo" in name:
        return torch.device("cpu")
    if "nccl" in name:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("npu", torch.npu.current_device())  # pragma: no cover - needs torch_npu


class Exchange:
    """The two all_gathers of one call, as a small state machine that never blocks unless asked.

    Every row of the call's ep x tp grid ends up on every rank (index n = t * ep + i). Each rank
    sends MAX_GROUP rows in both all_gathers (its own row first, then the rows of its ep group):
    the same size whatever groups a rank passes, in whichever order, so that no rank can make a
    peer's collective mismatch in size. `advance()` moves on what has arrived and returns True
    once the call is agreed (raising the agreed error instead where there is one); `finish()`
    blocks until then. The forward pipeline advances it while it computes the rank's own block,
    which needs no data from anyone, and issues no data collective before it returns True.
    """

    def __init__(self, op: str, row: list, pg_ep, pg_tp):
        self.op, self.pg_ep, self.pg_tp = op, pg_ep, pg_tp
        self.ep, self.tp = _size(pg_ep), _size(pg_tp)
        self.device = _device(pg_ep)
        self.block = torch.zeros((MAX_GROUP, ROW), dtype=torch.int64, device=self.device)
        self.block[0] = torch.tensor(row, dtype=torch.int64)
        self.done = False
        self.work = self.out = None
        self.step = 0
        self._next()

    def _issue(self, arg, pg, out):
        try:
            return collectives.all_gather(out, self.block, pg, async_op=True)
        except Exception as exc:
            raise self._error(arg, pg, exc) from exc

    def _error(self, arg, pg, exc):
        return CollectiveError(self.op, arg, pg.group_name, dist.get_process_group_ranks(pg),
                               "agreeing on the call (signature exchange)", str(exc).strip())

    def _next(self):
        """Issue the next all_gather (skipping one-rank groups), or decide after the last."""
        self.step += 1
        if self.step == 1 and self.ep > 1:
            self.out = torch.empty((self.ep * MAX_GROUP, ROW), dtype=torch.int64, device=self.device)
            self.work = self._issue("group_ep", self.pg_ep, self.out)
        elif self.step <= 2 and self.tp > 1:
            self.step = 2
            self.out = torch.empty((self.tp * MAX_GROUP, ROW), dtype=torch.int64, device=self.device)
            self.work = self._issue("group_tp", self.pg_tp, self.out)
        else:
            self.step = 3
            table = (self.out if self.tp > 1 else self.block).view(self.tp, MAX_GROUP, ROW).cpu()
            used = min(self.ep, MAX_GROUP)
            stray = int(table[:, used:, H_PRESENT].count_nonzero()) if used < MAX_GROUP else 0
            rows = table[:, :used].reshape(-1, ROW).tolist()
            self.done = True
            error = _decide(self.op, rows, used, self.tp, stray)
            if error is not None:
                raise error

    def _complete(self, block: bool) -> bool:
        if not block and not self.work.is_completed():
            return False
        arg, pg = ("group_ep", self.pg_ep) if self.step == 1 else ("group_tp", self.pg_tp)
        try:
            self.work.wait()
        except Exception as exc:
            raise self._error(arg, pg, exc) from exc
        if self.step == 1:
            keep = min(self.ep, MAX_GROUP)
            self.block[:keep] = self.out.view(self.ep, MAX_GROUP, ROW)[:keep, 0]
        self.work = None
        self._next()
        return True

    def advance(self) -> bool:
        while not self.done and self._complete(block=False):
            pass
        return self.done

    def finish(self) -> None:
        while not self.done:
            self._complete(block=True)


def _where(rows, ep, n) -> str:
    r = rows[n]
    return f"rank {r[H_RANK]} (i={r[H_I]}, t={r[H_T]})"


def _decide(op: str, rows, ep: int, tp: int, stray: int) -> Optional[BaseException]:
    """The error every rank raises for this table, None when the call may proceed."""
    first = rows[0]
    if (not stray and all(r[H_PRESENT] == 1 and r[H_VERDICT] == OK and r[H_I] == n % ep and r[H_T] == n // ep
                          and r[HEADER:M_START] == first[HEADER:M_START] for n, r in enumerate(rows))
            and all(r[H_EP] == rows[n // ep * ep][H_EP] and r[H_TP] == rows[n % ep][H_TP]
                    for n, r in enumerate(rows))):
        return None  # the usual case, decided in one pass
    present = [n for n, r in enumerate(rows) if r[H_PRESENT] == 1]
    failing = sorted((rows[n][H_RANK], n) for n in present if rows[n][H_VERDICT] != OK)
    if failing:
        return _rebuild_failure(op, rows, failing)
    misplaced = [n for n, r in enumerate(rows) if r[H_PRESENT] != 1 or (r[H_I], r[H_T]) != (n % ep, n // ep)]
    if misplaced or stray:
        seen = sorted(rows[n][H_RANK] for n in present)
        where = [(rows[n][H_RANK], (rows[n][H_I], rows[n][H_T]), (n % ep, n // ep)) for n in misplaced
                 if rows[n][H_PRESENT]]
        detail = (f"(world rank, its (i, t), where its peers found it): {where}" if where else
                  f"{len(misplaced) + stray} places of the grid were empty or over-full")
        return ContractValueError(op, "group_ep/group_tp", ValueText(f"{ep} x {tp} from world ranks {seen}"),
                                  "ranks.grid", f"the groups must form an ep x tp grid (each ep group meets each "
                                                f"tp group in one rank): {detail}")
    for name, a, b, fmt in _SLICES:
        values = [tuple(r[a:b]) for r in rows]
        if any(v != values[0] for v in values):
            return _disagree(op, name, rows, values, range(len(rows)), fmt, _WHY.get(name, _SAME_CALL))
    for arg, col, key in (("group_ep", H_EP, lambda n: n // ep), ("group_tp", H_TP, lambda n: n % ep)):
        by_group: dict = {}
        for n in range(len(rows)):
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


def _rebuild_failure(op, rows, failing) -> BaseException:
    rank, n = failing[0]
    r = rows[n]
    others = [rk for rk, _ in failing[1:]]
    where = _where(rows, None, n) + (f", and ranks {others} too" if others else "")
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

def _header(pg_ep, pg_tp, verdict, rule) -> list:
    return [1, dist.get_rank(), VERSION, verdict, rule, _hash(pg_ep.group_name), _hash(pg_tp.group_name),
            dist.get_rank(pg_ep), dist.get_rank(pg_tp)]


def start(op: str, fields: list, pg_ep, pg_tp) -> Exchange:
    """A call that passed its local checks: start the exchange (see Exchange)."""
    return Exchange(op, _header(pg_ep, pg_tp, OK, 0) + fields + [0] * MSG_WORDS, pg_ep, pg_tp)


def confirm(op: str, fields: list, pg_ep, pg_tp) -> None:
    """start(...).finish(): exchange, and raise what the table says (if anything)."""
    start(op, fields, pg_ep, pg_tp).finish()


def check_on_this_rank(op: str, group_ep, ep: int, group_tp, tp: int, check):
    """This rank's side of a call, before anything is exchanged: `check(resolve)` runs every local
    check and whatever else must succeed before the call can be agreed on (a plan, say), where
    `resolve()` checks the two group arguments and returns their (pg_ep, pg_tp). A failure anywhere
    in it takes part in the exchange (`reject`), so every rank raises it.

    Returns (check's result, pg_ep, pg_tp, on): `on` says whether the agreement is switched on; the
    caller then exchanges its signature (`start`/`confirm`) before its first data collective."""
    pgs = []

    def resolve():
        if not pgs:
            pgs.extend((groups.resolve(op, "group_ep", group_ep, ep), groups.resolve(op, "group_tp", group_tp, tp)))
        return pgs[0], pgs[1]

    try:
        on, bad_switch = is_enabled(op)
        value = check(resolve)
        if bad_switch is not None:
            raise bad_switch
        pg_ep, pg_tp = resolve()
    except Exception as exc:
        reject(op, exc, group_ep, group_tp)
    return value, pg_ep, pg_tp, on


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
    try:
        Exchange(op, _header(pg_ep, pg_tp, verdict, rule) + [0] * (M_START - HEADER) + words, pg_ep, pg_tp).finish()
    except (ContractViolation, RankFailed) as agreed:
        raise agreed from exc
    raise exc  # not reached: this rank's own verdict always fails the exchange
