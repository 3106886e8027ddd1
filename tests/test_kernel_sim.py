"""The real Ascend C kernel (op_kernel/) run in the CPU model of the Ascend C API (kernel_sim/).

Every tiling key x both dtypes x both shard types x all five activations x bias none / 2-D / 3-D on
2x2 and 4x2 worlds with ragged sizes (M/tp and H not multiples of 16, C/tp = 1, E = ep, forced tile
shapes with several tiles, tiles that span experts, small units with several column panels, row
chunks and epilogue chunks, the own rows 0..n tiles ahead), the msopst cases against their goldens,
and the counters against the geometry. See docs/kernel_model.md for what "passes in the model" means.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from moe_mc2 import kernel_sim as ks

# ragged shapes per world: (E, C, H, M, tiles); C is the per-source-rank row count of y (x holds C/tp
# rows for shard 1), H and M/tp are never multiples of 16, one shape per world has E == ep and C/tp == 1,
# and forced tile shapes give several remote tiles
SHAPES = {
    (2, 2): [
        dict(E=4, C=6, H=40, M=76, tiles=None),        # El 2, C/tp 3, N 38
        dict(E=2, C=2, H=18, M=34, tiles=None),        # E == ep, C/tp == 1, N 17
        dict(E=6, C=10, H=34, M=46, tiles=(1, 2)),     # El 3, 3 x 3 = 9 remote tiles (shard 1), N 23
        dict(E=4, C=6, H=26, M=20, tiles=(1, 1)),      # 1 expert x 1 row tiles, N 10
        dict(E=2, C=40, H=24, M=40, tiles=None),       # El 1, C/tp 20: more rows than a 16-row unit, N 20
    ],
    (4, 2): [
        dict(E=4, C=2, H=24, M=22, tiles=None),        # E == ep, C/tp == 1, N 11
        dict(E=8, C=6, H=36, M=30, tiles=(1, 1)),      # El 2, 6 remote tiles (shard 1), N 15
        dict(E=8, C=10, H=20, M=38, tiles=None),       # El 2, C/tp 5, N 19
    ],
}
ACTS = (0, 1, 2, 3, 4)
BIASES = ("none", "2d", "3d")
DTYPES = ("fp16", "bf16")


def _tiles_ok(shape, shard, ep, tp):
    """a forced tile shape must be legal for this shard type (rows of x: C/tp for shard 1, C for shard 0)"""
    if shape["tiles"] is None:
        return None
    e_tile, c_tile = shape["tiles"]
    rows = shape["C"] // tp if shard == 1 else shape["C"]
    El = shape["E"] // ep
    if e_tile > El or c_tile > rows or (c_tile < rows and e_tile != 1):
        return None
    return shape["tiles"]


def _matrix(world):
    """the full product for one world; the shape set rotates over the combinations"""
    ep, tp = world
    shapes = SHAPES[world]
    combos = itertools.product((0, 1), (False, True), BIASES, (False, True), (False, True), ACTS, DTYPES)
    for n, (shard, tw, bias, y2, y3, act, dtype) in enumerate(combos):
        shape = shapes[n % len(shapes)]
        if shard == 0 and shape["H"] % tp:
            shape = shapes[0]
        tiles = _tiles_ok(shape, shard, ep, tp)
        rows = shape["C"] // tp if shard == 1 else shape["C"]
        cells = (shape["E"] // ep) * rows
        # two cases in seven: 16 x 16 units (several column panels and row chunks) and short epilogue chunks
        # (7 is prime to the shape rotation); every fifth without forced tiles: tile ends that cut through experts
        small = n % 7 in (0, 3)
        ends = None
        if tiles is None and n % 5 == 0 and cells >= 3:
            ends = (1, cells // 2 + 1, cells) if cells // 2 + 1 < cells else (1, cells)
        cfg = ks.SimConfig(ep=ep, tp=tp, E=shape["E"], C=shape["C"], H=shape["H"], M=shape["M"], dtype=dtype,
                           act=act, shard_type=shard, bias=bias, transpose_weight=tw, y2=y2, y3=y3, seed=n,
                           tiles=tiles, tile_ends=ends, unit=(16, 16) if small else None,
                           epi_rows=2 if small else 0, own_ahead=(n // 2) % 3 if shard == 1 and n % 4 else None,
                           peer_ahead=(n // 3) % 3 if shard == 1 and n % 4 else None)
        yield pytest.param(cfg, id=f"{ep}x{tp}-s{shard}-tw{int(tw)}-b{bias}-y2{int(y2)}-y3{int(y3)}-a{act}-{dtype}-"
                                    f"E{cfg.E}C{cfg.C}H{cfg.H}M{cfg.M}" + (f"-t{cfg.tiles[0]}x{cfg.tiles[1]}"
                                                                           if cfg.tiles else "") +
                            (f"-ends{'_'.join(map(str, ends))}" if ends else "") + ("-u16" if small else "") +
                            (f"-ahead{cfg.own_ahead}_{cfg.peer_ahead}" if cfg.own_ahead is not None else ""))


def _assert_passes(res):
    assert res.invalid is None, res.invalid
    assert res.model_ok, "\n".join(res.errors)
    assert res.passed, "\n".join(c.line() for c in res.checks)


@pytest.mark.parametrize("cfg", list(_matrix((2, 2))))
def test_kernel_2x2(cfg):
    _assert_passes(ks.run(cfg))


@pytest.mark.parametrize("cfg", list(_matrix((4, 2))))
def test_kernel_4x2(cfg):
    _assert_passes(ks.run(cfg))


def test_matrix_covers_every_tiling_key_with_both_dtypes_and_all_activations():
    seen = set()
    for world in SHAPES:
        for p in _matrix(world):
            cfg = p.values[0]
            key = ks.plan(cfg)["tiling"]["key"]
            seen.add((world, key, cfg.dtype, cfg.act, cfg.bias))
    for world in SHAPES:
        keys = {k for (w, k, *_ ) in seen if w == world}
        assert keys == set(range(32)), sorted(set(range(32)) - keys)
        for key in range(32):
            acts = {a for (w, k, d, a, b) in seen if w == world and k == key}
            dts = {d for (w, k, d, a, b) in seen if w == world and k == key}
            assert dts == set(DTYPES)
            # a key with the y3 bit needs an activation; every other key sees all five
            assert acts == (set(ACTS) - {0} if key & 16 else set(ACTS)), (key, acts)
        assert {b for (w, *_ , b) in seen if w == world} == set(BIASES)


def test_ragged_sizes_and_several_tiles_are_in_the_matrix():
    facts = set()
    for world in SHAPES:
        for p in _matrix(world):
            cfg = p.values[0]
            t = ks.plan(cfg)["tiling"]
            N = cfg.M // cfg.tp
            facts.add(("N%16", N % 16 != 0))
            facts.add(("H%16", cfg.H % 16 != 0))
            if cfg.shard_type == 1 and cfg.C // cfg.tp == 1:
                facts.add(("C/tp==1", world))
            if cfg.E == cfg.ep:
                facts.add(("E==ep", world))
            if t["tiles"] > 1:
                facts.add(("tiles > 1", world))
            if t["ring"]:
                facts.add(("ring", world))
            else:
                facts.add(("direct", world))
            if N > t["unit_n"]:
                facts.add(("panels > 1", world))
            rows = cfg.C // cfg.tp if cfg.shard_type == 1 else cfg.C
            if rows > t["unit_m"]:
                facts.add(("chunks > 1", world))
            ends = [0] + t["tile_ends"]
            if any(a // rows != (b - 1) // rows for a, b in zip(ends, ends[1:])):
                facts.add(("tile spans experts", world))
    assert ("N%16", True) in facts and ("N%16", False) not in facts
    assert ("H%16", True) in facts and ("H%16", False) not in facts
    for world in SHAPES:
        for fact in ("C/tp==1", "E==ep", "tiles > 1", "ring", "direct", "panels > 1", "tile spans experts"):
            assert (fact, world) in facts, (fact, world)
    assert any(f[0] == "chunks > 1" for f in facts)


# ------------------------------------------------------------------------------------- msopst

@pytest.mark.parametrize("case", ks.msopst_cases(), ids=lambda c: c["case_name"])
def test_msopst_case_through_the_model(case):
    _assert_passes(ks.run_msopst_case(case))


# ----------------------------------------------------------------------------------- counters

def _geometry(cfg):
    t = ks.plan(cfg)["tiling"]
    return t, t["El"], t["C"], t["H"], t["N"]


@pytest.mark.parametrize("cfg", [
    ks.SimConfig(ep=2, tp=2, E=4, C=6, H=40, M=76, act=1, bias="3d", y2=True, y3=True),
    ks.SimConfig(ep=4, tp=2, E=8, C=6, H=36, M=30, act=0, shard_type=0, transpose_weight=True, tiles=(1, 2)),
    ks.SimConfig(ep=4, tp=2, E=8, C=6, H=36, M=30, act=0, shard_type=0, y2=True, tiles=(1, 2)),
    ks.SimConfig(ep=2, tp=2, E=6, C=10, H=34, M=46, dtype="bf16", act=2, bias="2d", y3=True, tiles=(1, 2),
                 unit=(16, 16)),
    ks.SimConfig(ep=2, tp=2, E=6, C=10, H=34, M=46, act=0, bias="2d", tile_ends=(2, 7, 15), own_ahead=1),
    ks.SimConfig(ep=4, tp=2, E=8, C=6, H=36, M=30, act=1, bias="3d", y2=True, tile_ends=(2, 5, 6), own_ahead=0,
                 peer_ahead=2),
])
def test_counters_match_the_geometry(cfg):
    res = ks.run(cfg)
    _assert_passes(res)
    t, El, C, H, N = _geometry(cfg)
    es = 2
    rows = El * cfg.ep * C
    for r in res.report["ranks"]:
        b = r["bytes"]
        assert r["cube_flops"] == 2 * rows * H * N                   # every output row multiplied exactly once
        assert b["y1"]["kernel_write"] == rows * N * es              # and written exactly once
        assert b["y1"]["kernel_read"] == 0
        assert b["x"]["kernel_write"] == 0 and b["weight"]["kernel_write"] == 0
        if cfg.y2:
            assert b["y2"]["kernel_write"] == rows * H * es
        else:
            assert "y2" not in b
        if cfg.y3 and cfg.act:
            assert b["y3"]["kernel_write"] == rows * N * es
        ring = b.get("ws.ring", {"kernel_write": 0, "kernel_read": 0})
        if t["ring"]:                                                # fp32 units through the ring, read back once
            assert ring["kernel_write"] == rows * N * 4 and ring["kernel_read"] == rows * N * 4
        else:                                                        # act None: y1 from the matmul, no epilogue
            assert ring["kernel_write"] == 0 and ring["kernel_read"] == 0
            assert r["vector_elements"] == 0
        if cfg.shard_type == 0 and not cfg.y2:                       # the assemble: every row once into the slot
            assert b["ws.asm"]["kernel_write"] == rows * H * es
        elif "ws.asm" in b:
            assert b["ws.asm"]["kernel_write"] == 0
        assert b["ws.ag"]["kernel_write"] == 0                       # A read in place, never rewritten
        tiles = t["tiles"]
        colls = r["collectives"]
        assert colls["AlltoAllV"]["calls"] == tiles
        assert colls["AllGather"]["calls"] == tiles
        assert r["group_syncs"] == tiles
        assert r["sync_all"] == (2 * tiles + 1 if cfg.shard_type == 0 else 1)


def test_counting_mode_counts_what_the_computing_run_counts():
    cfg = ks.SimConfig(ep=2, tp=2, E=4, C=6, H=40, M=76, act=4, bias="2d", y2=True, y3=True)
    full = ks.run(cfg).report["ranks"]
    counted = ks.run(ks.SimConfig(**{**cfg.__dict__, "count_only": True})).report["ranks"]
    for a, b in zip(full, counted):
        for name, c in a["bytes"].items():  # GM level exactly; the L2 model depends on the cores' interleaving
            for level in ("kernel_read", "kernel_write", "comm_read", "comm_write"):
                assert c[level] == b["bytes"][name][level], (name, level)
        for k in ("cube_flops", "matmuls", "sync_all", "collectives", "group_syncs", "vector_elements"):
            assert a[k] == b[k], k


def test_seed_shape_counting_run_is_quick():
    """issue 10's seed shapes (per rank y1 is 4 x 4096 x 4096) run in counting mode in seconds"""
    cfg = ks.SimConfig(ep=4, tp=2, E=16, C=1024, H=1024, M=8192, act=1, bias="3d", count_only=True, aic=2)
    res = ks.run(cfg)
    assert res.model_ok, res.errors
    assert res.report["seconds"] < 60
    r0 = res.report["ranks"][0]
    assert r0["cube_flops"] == 2 * 4 * 4096 * 1024 * 4096


# ------------------------------------------------------------------------- timing independence

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_collective_landing_times_do_not_matter(seed):
    cfg = ks.SimConfig(ep=4, tp=2, E=8, C=6, H=36, M=30, act=1, bias="3d", y2=True, y3=True, tiles=(1, 1),
                       seed=seed, max_delay=400)
    _assert_passes(ks.run(cfg))


def test_one_cube_core_per_rank():
    _assert_passes(ks.run(ks.SimConfig(ep=2, tp=2, E=4, C=6, H=40, M=76, act=3, y2=True, aic=1)))


def test_bf16_bias_column():
    """CANN's OpDef has a bf16 x + bf16 bias column; the kernel compiles for it (ORIG_DTYPE_BIAS) and the
    model runs it when the contract's rules accept that pair."""
    cfg = ks.SimConfig(ep=2, tp=2, E=4, C=6, H=40, M=76, dtype="bf16", act=1, bias="2d", bias_dtype="bf16", y3=True)
    res = ks.run(cfg)
    if res.invalid is not None:
        assert res.invalid["rule"] == "bias.dtype"
        pytest.skip("the contract's rules reject a bf16 bias for bf16 x (moe_mc2::Validate)")
    _assert_passes(res)


def test_invalid_call_is_rejected_by_the_host_rules():
    res = ks.run(ks.SimConfig(ep=2, tp=2, E=3, C=6, H=40, M=76))
    assert res.invalid is not None and res.invalid["rule"] == "E.multiple"
    assert not res.passed


# ------------------------------------------------------------------ any valid shape of the contract

def _random_calls(n=16, seed=2024):
    """valid calls drawn over the contract's ranges (kept small so the suite stays fast)"""
    import random

    rnd = random.Random(seed)
    out = []
    while len(out) < n:
        ep, tp = rnd.choice([(2, 2), (2, 4), (4, 2), (4, 4), (8, 2), (2, 8)])
        shard = rnd.randint(0, 1)
        E = ep * rnd.randint(1, 3)
        C = tp * rnd.randint(1, 3) if shard == 1 else rnd.randint(1, 9)
        H = rnd.randint(1, 70) if shard == 1 else tp * rnd.randint(1, 20)
        M = tp * rnd.randint(1, 70)
        cfg = ks.SimConfig(ep=ep, tp=tp, E=E, C=C, H=H, M=M, dtype=rnd.choice(DTYPES), act=rnd.choice(ACTS),
                           shard_type=shard, bias=rnd.choice(BIASES), transpose_weight=rnd.random() < 0.5,
                           y2=rnd.random() < 0.5, y3=rnd.random() < 0.5, seed=len(out), aic=rnd.choice([1, 2, 3]))
        out.append(pytest.param(cfg, id=f"{ep}x{tp}-s{shard}-E{E}C{C}H{H}M{M}-{cfg.dtype}-a{cfg.act}-aic{cfg.aic}"))
    return out


@pytest.mark.parametrize("cfg", _random_calls())
def test_random_valid_calls(cfg):
    _assert_passes(ks.run(cfg))
