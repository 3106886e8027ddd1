"""`python -m moe_mc2 plan`: the kernel's tile plan and the cost model's predictions for one call.

Everything is computed in C++ by the one cost model the host tiling uses (op_host/core/aag_bmm_planner.*),
reached through the C ABI of the CPU model's library (`aag_sim_cost` in kernel_sim/); nothing of the model
is restated here. `--count` runs the real kernel source in the CPU model in counting mode (no arithmetic)
and prints what it moved next to what the model predicted. All figures are predictions of a model with
the stated constants (docs/op_alltoall_allgather_bmm.md, "Cost model"), not NPU measurements.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import sys
from typing import Optional

from . import kernel_sim as ks
from .contract.problem import add_problem_args
from .contract import activations

MiB = float(1 << 20)


def cost(cfg: ks.SimConfig, legacy_tiles=None, latency_us: float = 0.0, serial_groups: bool = False) -> dict:
    """The cost model's JSON for one call (aag_sim_cost); latency_us / serial_groups: what-ifs on two of
    its assumptions (0 / False: the constants)."""
    call = ks._struct(cfg)
    if legacy_tiles:
        call.legacyETile, call.legacyCTile = legacy_tiles
    call.collectiveLatencyUs = latency_us
    call.serialGroups = int(serial_groups)
    buf = ctypes.create_string_buffer(1 << 22)
    ks.load().aag_sim_cost(ctypes.byref(call), buf, len(buf))
    return json.loads(buf.value.decode())


def counted(cfg: ks.SimConfig) -> dict:
    """Rank 0's counters of the real kernel in the CPU model, counting mode."""
    res = ks.run(ks.SimConfig(**{**cfg.__dict__, "count_only": True}))
    if res.invalid is not None or not res.model_ok:
        raise RuntimeError("the kernel failed in the CPU model: " + "; ".join(res.errors))
    s = ks.count_summary(res.report)
    s["seconds"] = res.report["seconds"]
    s["gm_bytes"] = s["gm_data"] + s["gm_workspace"]
    return s


def summary(c: dict, cnt: Optional[dict] = None) -> dict:
    """The one JSON object of `plan --json`."""
    p, ref = c["plan"], c["reference"]
    out = {
        "makespan_us": p["makespan_us"], "bound_us": p["bound_us"], "ratio": p["ratio"],
        "comm_ideal_us": p["comm_ideal_us"], "compute_ideal_us": p["compute_ideal_us"],
        "reference_makespan_us": ref["makespan_us"],
        "vs_reference": p["makespan_us"] / ref["makespan_us"] if ref["makespan_us"] else None,
        "single_tile_makespan_us": c["single_tile"]["makespan_us"],
        "legacy_makespan_us": c["legacy"]["makespan_us"],
        "hbm_bytes_floor": p["hbm_bytes_floor"], "hbm_bytes_model": p["hbm_bytes_model"],
        "hbm_workspace_model": p["hbm_workspace"], "gm_bytes_model": p["gm_data"] + p["gm_workspace"],
        "cube_flops_model": p["cube_flops"], "tile_ends": c["tile_ends"], "unit": [c["unit_m"], c["unit_n"]],
        "own_ahead": c["own_ahead"], "peer_ahead": c["peer_ahead"],
        "ring": c["ring"], "description": p["description"], "candidates": c["candidates"],
        "machine": c["machine"], "constants": c["constants"],
        "plan": p, "single_tile": c["single_tile"], "reference": ref, "legacy": c["legacy"],
    }
    if cnt is not None:
        out.update({
            "hbm_bytes_counted": cnt["hbm_data"], "workspace_bytes_counted": cnt["hbm_workspace"],
            "gm_bytes_counted": cnt["gm_bytes"], "cube_flops_counted": cnt["cube_flops"],
            "matmuls_counted": cnt["matmuls"], "vector_elements_counted": cnt["vector_elements"],
            "count_seconds": cnt["seconds"],
        })
    return out


def _row(name, p, ref_us):
    vs = f"{p['makespan_us'] / ref_us:6.2f}x" if ref_us else "     -"
    return (f"  {name:<18} {p['makespan_us']:9.1f} {p['ratio']:6.3f} {vs} {p['hbm_bytes_model'] / MiB:9.1f} "
            f"{p['hbm_workspace'] / MiB:9.1f} {(p['gm_data'] + p['gm_workspace']) / MiB:9.1f}  {p['description']}")


def table(cfg: ks.SimConfig, c: dict, cnt: Optional[dict] = None) -> str:
    p, k = c["plan"], c["constants"]
    lines = [
        f"plan: {cfg.describe()}",
        "  predictions of the cost model (op_host/core/aag_bmm_planner.*), not NPU measurements; constants: "
        f"cube {k['cube_flops_per_s'] / 1e12:.0f} TFLOP/s, HBM {k['hbm_bytes_per_s'] / 1e12:.1f} TB/s, "
        f"L2 {k['l2_bytes_per_s'] / 1e12:.0f} TB/s x {k['l2_bytes'] / MiB:.0f} MiB ({k['l2_line_bytes']} B lines), "
        f"link {k['link_bytes_per_s'] / 1e9:.0f} GB/s, {k['collective_latency_s'] * 1e6:.0f} us per collective, "
        f"vector {k['vector_elem_ops_per_s'] / 1e9:.0f} G elem-op/s per core, SyncAll {k['sync_all_s'] * 1e6:.0f} us, "
        f"{c['machine']['aic']} cube + {c['machine']['aiv']} vector cores",
        f"  chosen: {p['description']} ({c['candidates']} tilings evaluated); a cell is one x row of one local expert",
        "",
        "  timeline (us)  tile  cells         AlltoAllV     AllGather     own rows      peer rows     far rows"
        "        cube  vector  HBM    L2",
        "  (own rows: from x; peer rows: from the AlltoAllV receive buffer; far rows: from the AllGather's;"
        " shard 0: own = the assemble)",
    ]

    def span(part):
        return f"{part['start_us']:6.1f}-{part['end_us']:<6.1f}"

    for n, t in enumerate(p["tiles"]):
        parts = (t["own"], t["peer"], t["far"])
        total = {key: sum(x[key] for x in parts) for key in ("cube_us", "vector_us", "hbm_us", "l2_us")}
        lines.append(
            f"                {n:4d}  {t['cells'][0]:5d}-{t['cells'][1]:<5d}  {t['a2a_us'][0]:6.1f}-{t['a2a_us'][1]:<6.1f}"
            f" {t['ag_us'][0]:6.1f}-{t['ag_us'][1]:<6.1f} {span(t['own'])} {span(t['peer'])} {span(t['far'])}"
            f"  {total['cube_us']:6.1f} {total['vector_us']:6.1f} {total['hbm_us']:6.1f} {total['l2_us']:6.1f}")
    lines += [
        "",
        f"  bound = max(communication alone {p['comm_ideal_us']:.1f} us, computation alone {p['compute_ideal_us']:.1f} us)"
        f" = {p['bound_us']:.1f} us;  HBM floor (gathered A + weight + y1, once each) = {p['hbm_bytes_floor'] / MiB:.1f} MiB",
        "  schedule            makespan  ratio vs ref  HBM MiB   ws MiB    GM MiB  tiles",
        _row("this kernel", p, c["reference"]["makespan_us"]),
        _row("same, one tile", c["single_tile"], c["reference"]["makespan_us"]),
        _row("CANN reference", c["reference"], c["reference"]["makespan_us"]),
        _row("issue-9 kernel", c["legacy"], c["reference"]["makespan_us"]),
        "  (ratio: makespan / bound; HBM: data bytes after the L2 model; ws: scratch workspace reaching HBM; "
        "GM: bytes the API calls move)",
    ]
    if cnt is not None:
        def pct(a, b):
            return f"{100.0 * (b - a) / a:+.2f}%" if a else "   -"
        lines += [
            "",
            f"  counted in the CPU model (the real kernel source, counting mode, rank 0, {cnt['seconds']:.1f} s) "
            "vs the cost model:",
            f"    HBM data        {cnt['hbm_data'] / MiB:10.2f} MiB   model {p['hbm_bytes_model'] / MiB:10.2f} MiB  "
            f"{pct(cnt['hbm_data'], p['hbm_bytes_model'])}",
            f"    HBM workspace   {cnt['hbm_workspace'] / MiB:10.2f} MiB   model {p['hbm_workspace'] / MiB:10.2f} MiB  "
            f"{pct(cnt['hbm_workspace'], p['hbm_workspace'])}",
            f"    GM (API level)  {cnt['gm_bytes'] / MiB:10.2f} MiB   model {(p['gm_data'] + p['gm_workspace']) / MiB:10.2f} MiB  "
            f"{pct(cnt['gm_bytes'], p['gm_data'] + p['gm_workspace'])}",
            f"    cube FLOPs      {cnt['cube_flops']:.4e}       model {p['cube_flops_exact']:.4e}  "
            f"{pct(cnt['cube_flops'], p['cube_flops_exact'])}",
            f"    matmul calls    {cnt['matmuls']:10d}       model {p['matmul_calls']:10d}",
            f"    vector elem-ops {cnt['vector_elements']:10d}       model {p['vector_elem_ops']:10d}",
        ]
    return "\n".join(lines)


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m moe_mc2 plan",
                                description="The kernel's tile plan and the cost model's predicted timeline, "
                                            "bound and traffic, next to CANN's reference schedule.")
    add_problem_args(p, ep=4, tp=2, E=16, C=1024, H=1024, M=8192, dtypes=ks.DTYPES, dtype="fp16", act="GELU")
    p.add_argument("--bias", nargs="?", const="3d", default="none", choices=("none", "2d", "3d"),
                   help="with a bias ((E/ep, 1, M/tp) when given without a value)")
    p.add_argument("--transpose-weight", action="store_true")
    p.add_argument("--y2", action="store_true", help="need_allgather_out")
    p.add_argument("--y3", action="store_true", help="need_activation_feature")
    p.add_argument("--aic", type=int, default=24, help="cube cores per rank (vector cores: twice)")
    p.add_argument("--l2-mib", type=int, default=0, help="L2 per rank for the HBM model (default: the constant)")
    p.add_argument("--tile-ends", type=int, nargs="+", default=None, metavar="CELL",
                   help="price these tile boundaries instead of the planner's")
    p.add_argument("--own-ahead", type=int, default=None, help="shard 1: force the own-rows lookahead")
    p.add_argument("--peer-ahead", type=int, default=None,
                   help="shard 1: force the peer rows' lookahead (-1: they wait for the AllGather with the far rows)")
    p.add_argument("--legacy-tiles", type=int, nargs=2, default=None, metavar=("E_TILE", "C_TILE"),
                   help="the issue-9 kernel's tile shape (default: its best under these constants)")
    p.add_argument("--collective-latency-us", type=float, default=0.0,
                   help="what-if: latency of one collective (default: the model's constant)")
    p.add_argument("--serial-groups", action="store_true",
                   help="what-if: the ep and tp collectives never run at the same time")
    p.add_argument("--count", action="store_true",
                   help="also run the real kernel source in the CPU model (counting mode) and print its counters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = _parse(sys.argv[1:] if argv is None else argv)
    try:
        act = activations.parse_act_type(a.act)
    except Exception as exc:  # the contract's own error text
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    cfg = ks.SimConfig(ep=a.ep, tp=a.tp, E=a.E, C=a.C, H=a.H, M=a.M, dtype=a.dtype, act=act,
                       shard_type=a.shard_type, bias=a.bias, transpose_weight=a.transpose_weight, y2=a.y2, y3=a.y3,
                       aic=a.aic, l2_bytes=a.l2_mib << 20, tile_ends=tuple(a.tile_ends) if a.tile_ends else None,
                       own_ahead=a.own_ahead, peer_ahead=a.peer_ahead)
    c = cost(cfg, tuple(a.legacy_tiles) if a.legacy_tiles else None, a.collective_latency_us, a.serial_groups)
    if not c.get("valid"):
        print(f"invalid call: [{c.get('rule')}] {c.get('message')}", file=sys.stderr)
        return 2
    cnt = None
    if a.count:  # run exactly the plan the model priced (tiles and lookahead), whatever the constants
        shard1 = c["shard"] == 1
        cnt = counted(ks.SimConfig(**{**cfg.__dict__, "tile_ends": tuple(c["tile_ends"]),
                                      "own_ahead": c["own_ahead"] if shard1 else None,
                                      "peer_ahead": c["peer_ahead"] if shard1 else None}))
    if a.json:
        print(json.dumps(summary(c, cnt), indent=1))
    else:
        print(table(cfg, c, cnt))
    return 0
