"""Smoke run of the benchmark machinery at tiny sizes (no timing assertions)."""
from __future__ import annotations

import json

import pytest
import torch

from moe_mc2 import bench

KEYS = {"fused_ms", "unfused_ms", "comm_ms", "compute_ms", "speedup", "overlap", "fused_peak_mb", "unfused_peak_mb",
        "fused_noagree_ms", "agree_ms", "agree_pct"}


def _same_result(ctx, cfg):
    """The unfused sequence the benchmark times computes what the fused op computes."""
    from moe_mc2.contract.activations import parse_act_type

    x, w, b = bench._inputs(ctx, cfg)
    act = parse_act_type(cfg.act)
    return bench.unfused(ctx, cfg, x, w, b, act).float(), bench.fused(ctx, cfg, x, w, b, act).float()


@pytest.mark.parametrize("st", [0, 1])
def test_unfused_sequence_equals_fused_op(world_2x2, st):
    cfg = bench.BenchConfig(E=4, C=8, H=16, M=8, dtype="float32", shard_type=st, act="silu", bias=True)
    for unf, fus in world_2x2.run(_same_result, cfg):
        assert unf.shape == fus.shape
        assert torch.allclose(unf, fus, atol=1e-5, rtol=1e-5), (unf - fus).abs().max()


def test_bench_run_tiny_with_plot(world_2x2, tmp_path):
    cfg = bench.BenchConfig(E=4, C=16, H=32, M=32, iters=2, warmup=1, dtype="bfloat16")
    plot = tmp_path / "timeline.png"
    summary, per_rank = bench.run(cfg, progress=False, plot=str(plot), world=world_2x2)
    assert set(summary) == KEYS
    assert all(summary[k] > 0 for k in ("fused_ms", "unfused_ms", "comm_ms", "compute_ms", "speedup"))
    assert summary["fused_peak_mb"] > 0 and summary["unfused_peak_mb"] > 0
    assert len(per_rank) == 4 and all(len(r["times"]["fused"]) == 2 for r in per_rank)
    kinds = {k for r in per_rank for k, *_ in r["spans"]}
    assert {"comm", "compute"} <= kinds  # the runtime reports both through runtime/trace.py
    assert plot.exists() and plot.stat().st_size > 10_000
    text = bench.table(cfg, summary)
    assert "fused op" in text and "speedup" in text


def test_main_prints_json_last(capsys, tmp_path):
    rc = bench.main(["--ep", "2", "--tp", "2", "--E", "4", "--C", "8", "--H", "16", "--M", "16", "--iters", "1",
                     "--warmup", "0", "--dtype", "float32", "--act", "relu", "--shard-type", "0", "--json", "--quiet"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert set(json.loads(out[-1])) == KEYS


def test_main_rejects_bad_shapes(capsys):
    assert bench.main(["--E", "3", "--quiet"]) == 2  # E not a multiple of ep
    assert "--E=3 breaks rule [E.multiple]" in capsys.readouterr().err


@pytest.mark.parametrize("argv, text", [
    (["--C", "3", "--M", "7"], "--C=3 breaks rule [C.multiple]"),  # never rounded down to C = 2
    (["--M", "7"], "--M=7 breaks rule [M.multiple]"),
    (["--C", "1"], "--C=1 breaks rule [C.multiple]"),  # in the user's terms, not x=(8, 0, 1024)
    (["--shard-type", "0", "--H", "5"], "--H=5 breaks rule [H.multiple]"),
    (["--ep", "3"], "--ep=3 breaks rule [ep.world_size]"),
    (["--act", "tanh"], "--act='tanh' breaks rule [act_type.value]"),
    (["--iters", "0"], "--iters=0"),
])
def test_bench_and_demo_check_flags_before_starting_ranks(capsys, argv, text):
    from moe_mc2 import demo

    assert bench.main(argv + ["--quiet"]) == 2
    assert text in capsys.readouterr().err
    if "--iters" not in argv:
        assert demo.main(argv) == 2
        out = capsys.readouterr()
        assert text in out.err and "starting" not in out.out  # no rank was started


def test_soak_smoke(world_2x2):
    cfg = bench.BenchConfig(E=4, C=8, H=16, M=8, dtype="float32")
    s = bench.soak(cfg, 20, progress=False, world=world_2x2)
    assert s["soak_calls"] == 20 and len(s["call_ms"]) == 10 and len(s["rss_mb"]) == 4
    assert all(len(r) == 11 and min(r) > 0 for r in s["rss_mb"]) and all(v > 0 for v in s["call_ms"])
    assert "RSS MB" in bench.soak_table(cfg, s)


def test_live_bytes_counter():
    with bench._LiveBytes() as mode:
        a = torch.empty(1024, dtype=torch.float32)  # 4 KiB
        b = torch.empty(2048, dtype=torch.float32)  # 8 KiB
        del a
        c = torch.zeros(256)  # 1 KiB, after a was freed
        del b, c
    assert mode.peak == 12 * 1024


def _peaks(ctx, cfg):
    from moe_mc2.contract.activations import parse_act_type

    x, w, b = bench._inputs(ctx, cfg)
    act = parse_act_type(cfg.act)
    y1_bytes = bench.fused(ctx, cfg, x, w, b, act).nbytes
    return y1_bytes, bench._peak_bytes(lambda: bench.fused_kernel(ctx, cfg, x, w, b, act))


def test_fused_peak_sees_the_kernels_buffers(world_2x2):
    """The memory count must include the pipeline's staging buffers, not just the output."""
    cfg = bench.BenchConfig(E=4, C=16, H=32, M=32, dtype="bfloat16")
    for y1_bytes, peak in world_2x2.run(_peaks, cfg):
        assert peak > y1_bytes
