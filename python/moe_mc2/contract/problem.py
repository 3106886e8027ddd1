"""Problem sizes as the command-line tools take them, checked in the user's own terms.

`python -m moe_mc2 demo|bench` take the whole layer (--ep --tp --E --C --H --M --dtype --act
--shard-type) and derive every rank's x and weight from it. Before any rank starts, every size is
checked here and an error names the flag the user typed, its value and the rule id: a size is
never rounded (--C 3 with --tp 2 is refused, not run as C = 2) and a rule is never reported on
a derived shape the user did not write (--C 1 is "a multiple of --tp", not "x=(4, 0, 8)").
"""
from __future__ import annotations

from .activations import parse_act_type
from .errors import ContractTypeError, ContractViolation
from .rules import DIM_MAX, DIM_MIN, E_MAX, E_MIN, PORTABLE_DTYPES, PORTABLE_WORLD_SIZES, Checker, check_forward, \
    dtype_name


def add_problem_args(parser, *, ep, tp, E, C, H, M, dtypes, dtype, act, shard_type=1) -> None:
    """The flags every tool takes for a whole layer (--ep --tp --E --C --H --M --dtype --act
    --shard-type), with the tool's defaults; check_problem then checks them in these terms."""
    parser.add_argument("--ep", type=int, default=ep, help="ranks of each expert-parallel group")
    parser.add_argument("--tp", type=int, default=tp, help="ranks of each tensor-parallel group")
    parser.add_argument("--E", type=int, default=E, help="experts in total")
    parser.add_argument("--C", type=int, default=C, help="rows per expert per source ep rank (capacity)")
    parser.add_argument("--H", type=int, default=H, help="hidden size (K of the matmul)")
    parser.add_argument("--M", type=int, default=M, help="output features before the tp split")
    parser.add_argument("--dtype", choices=sorted(dtypes), default=dtype)
    parser.add_argument("--act", default=act, help="None, GELU, Silu, Relu, FastGELU (any case) or 0-4")
    parser.add_argument("--shard-type", type=int, choices=(0, 1), default=shard_type,
                        help="1: the tp ranks split C; 0: they split H")


def check_problem(tool: str, *, ep, tp, E, C, H, M, shard_type, dtype, act) -> int:
    """Raise the first broken rule, naming the flag; return act as its int code. `tool` is the
    program the user ran ("python -m moe_mc2 demo"), the messages' first words."""
    op = tool
    chk = Checker(op)
    sizes = (("--ep", ep), ("--tp", tp), ("--E", E), ("--C", C), ("--H", H), ("--M", M))
    for flag, v in sizes:
        chk.type(isinstance(v, int) and not isinstance(v, bool), flag, v, _rule_of(flag), "must be an int")
    for flag, v, rid in (("--ep", ep, "ep.world_size"), ("--tp", tp, "tp.world_size")):
        chk.value(v in PORTABLE_WORLD_SIZES, flag, v, rid,
                  f"must be one of {PORTABLE_WORLD_SIZES} (ranks of each group on the portable runtime)")
    chk.shard_type(shard_type, "0 (tp ranks split H) or 1 (tp ranks split C)")
    if dtype not in PORTABLE_DTYPES:
        raise ContractTypeError(op, "--dtype", dtype_name(dtype), "x.dtype", "must be float16, bfloat16 or float32")
    try:
        act_code = parse_act_type(act, op=op)
    except ContractViolation as exc:
        raise type(exc)(op, "--act", exc.value, exc.rule_id, exc.rule) from None
    chk.value(E_MIN <= E <= E_MAX, "--E", E, "E.range", f"experts in total must be in [{E_MIN}, {E_MAX}]")
    chk.value(E % ep == 0, "--E", E, "E.multiple", f"must be a multiple of --ep = {ep} (each ep rank holds E/ep experts)")
    chk.value(C >= 1, "--C", C, "C.positive", "capacity (rows per expert from each ep rank) must be >= 1")
    if shard_type == 1:
        chk.value(C % tp == 0, "--C", C, "C.multiple",
                  f"must be a multiple of --tp = {tp} (shard type 1 splits C over the tp ranks)")
    chk.value(DIM_MIN <= H <= DIM_MAX, "--H", H, "H.range", f"must be in [{DIM_MIN}, {DIM_MAX}]")
    if shard_type == 0:
        chk.value(H % tp == 0, "--H", H, "H.multiple",
                  f"must be a multiple of --tp = {tp} (shard type 0 splits H over the tp ranks)")
    chk.value(M >= 1 and M % tp == 0, "--M", M, "M.multiple",
              f"must be a positive multiple of --tp = {tp} (each tp rank holds M/tp output columns)")
    chk.value(M // tp <= DIM_MAX, "--M", M, "N.range", f"M/tp = {M // tp} must be <= {DIM_MAX}")
    # Every derived rank shape now passes the op's own rules; checked anyway, so the tools can
    # never start ranks with a call the op refuses.
    x = (E, C // tp, H) if shard_type == 1 else (E, C, H // tp)
    check_forward(x, dtype, (E // ep, H, M // tp), dtype, None, None, group_ep="ep", ep=ep, group_tp="tp", tp=tp,
                  shard_type=shard_type, act_type=act_code)
    return act_code


def _rule_of(flag: str) -> str:
    return {"--ep": "ep.world_size", "--tp": "tp.world_size", "--E": "E.range", "--C": "C.positive",
            "--H": "H.range", "--M": "M.multiple"}[flag]
