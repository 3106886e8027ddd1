"""The CPU model of the Ascend C API can fail: deliberately broken kernels (kernel_sim/src/probes.cpp)
run through it and each defect is reported, naming the call; the tolerance rejects a wrong bit; the
command line exits 1. Companion of tests/test_kernel_sim.py (the real kernel passing)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from moe_mc2 import kernel_sim as ks

BASE = dict(ep=2, tp=2, E=4, C=8, H=32, M=32)


def _probe(name, **over):
    return ks.run(ks.SimConfig(**{**BASE, **over, "kernel": name}), check=False)


@pytest.mark.parametrize("name, expected", [
    ("read_before_wait", ["DataCopy(GM->UB)", "receive buffer of a", "read before Wait"]),
    ("unaligned_datacopy", ["DataCopy(GM->UB)", "14 bytes is not a multiple of 32 bytes"]),
    ("wait_without_commit", ["Hccl::Wait", "without a matching Commit"]),
    ("ub_overflow", ["TPipe::InitBuffer", "does not fit the Unified Buffer"]),
    ("pipe_race", ["Add", "PIPE_V after an unfinished write on PIPE_MTE2"]),
    ("missing_group_sync", ["AllGather #0 of group_tp", "send buffer read", "group_ep server"]),
    ("unaligned_operand", ["Add", "not 32-byte aligned"]),
    ("missing_cross_core_flag", ["DataCopy(GM->UB)", "y1 byte", "races with a write by", "AIV"]),
    ("finalize_before_others_wait", ["Hccl::", "Finalize", "SyncAll"]),
])
def test_broken_kernel_is_reported(name, expected):
    res = _probe(name)
    assert not res.model_ok
    text = "\n".join(res.errors)
    for piece in expected:
        assert piece in text, text


@pytest.mark.parametrize("name, expected", [
    ("matmul_bias_without_isbias", ["Matmul::SetBias", "isBias = 1"]),
    ("matmul_orgshape_late", ["Matmul::SetOrgShape", "before them"]),
    ("matmul_async_no_wait_flag", ["Matmul::IterateAll", "waitIterateAll = true"]),
    ("matmul_bf16_bias", ["Matmul::IterateAll", "half or float on Atlas A2/A3"]),
])
def test_broken_matmul_use_is_reported(name, expected):
    assert _probe("matmul_ok").model_ok  # the same probe following the documented rules
    res = _probe(name)
    assert not res.model_ok
    text = "\n".join(res.errors)
    for piece in expected:
        assert piece in text, text


def test_l2_model_counts_a_reread_only_when_it_does_not_fit():
    """vector core 0 of every rank reads x (64 KiB) twice and writes 8 KiB of y1 once (probe l2_reread):
    with the default L2 the second pass hits, with 16 KiB it misses; writes reach HBM once either way"""
    cfg = dict(BASE, E=4, C=64, H=256, count_only=True)
    xbytes = 4 * 32 * 256 * 2
    for l2, reads in ((0, xbytes), (16 * 1024, 2 * xbytes)):
        res = ks.run(ks.SimConfig(**cfg, kernel="l2_reread", l2_bytes=l2), check=False)
        assert res.model_ok, res.errors
        for r in res.report["ranks"]:
            x, y1 = r["bytes"]["x"], r["bytes"]["y1"]
            assert x["kernel_read"] == 2 * xbytes and x["hbm_read"] == reads
            assert y1["kernel_write"] == 8192 and y1["hbm_write"] == 8192 and y1["hbm_read"] == 0


def test_missing_syncall_is_a_deadlock_reported_with_every_core_position_within_seconds():
    t0 = time.monotonic()
    res = _probe("missing_syncall", ep=4, tp=2, E=8)
    elapsed = time.monotonic() - t0
    assert not res.model_ok and res.report["deadlock"]
    text = "\n".join(res.errors)
    assert "deadlock" in text
    assert "waits in SyncAll<true> #1 of this core" in text
    assert "rank 7 (ep 3, tp 1) AIV 1: left the kernel" in text   # the core that skipped it
    assert text.count(" AIV ") >= 8 * 4                             # every vector core of every rank listed
    assert elapsed < 10


def test_a_rank_that_never_joins_a_collective_is_a_deadlock():
    res = _probe("rank_skips_collective")
    text = "\n".join(res.errors)
    assert res.report["deadlock"] and "waits in Hccl::Wait(handle 0) of group_tp (AllGather)" in text


def test_queue_pipeline_and_cross_core_flags_work_when_used_correctly():
    """positive controls: the queue model (VECIN / VECOUT depth 2) and mode-1 cross-core flags"""
    cfg = ks.SimConfig(**BASE, kernel="queue_pipeline")
    inputs = ks.make_inputs(cfg)
    res = ks.run(cfg, inputs, check=False)
    assert res.model_ok, res.errors
    for r in range(4):
        assert torch.equal(res.outputs[r][0].view(-1)[:256].float(), inputs[0][r].view(-1)[:256].float() * 2)
    cfg = ks.SimConfig(**BASE, kernel="cross_core_flag")
    res = ks.run(cfg, inputs, check=False)
    assert res.model_ok, res.errors
    x, y1 = inputs[0][0].view(-1), res.outputs[0][0].view(-1)
    for me in range(4):
        partner = me ^ 1
        assert torch.equal(y1[(8 + me) * 16:(9 + me) * 16].float(), x[partner * 16:(partner + 1) * 16].float() * 2)


def test_a_wrong_bit_fails_the_tolerance():
    cfg = ks.SimConfig(**BASE, act=1, bias="2d", y2=True, y3=True)
    inputs = ks.make_inputs(cfg)
    res = ks.run(cfg, inputs)
    assert res.passed
    y1, y2, y3 = res.outputs[3]
    # one element of y1 moved by two units in the last place of fp16: beyond half an ulp + the fp32 terms
    bad = y1.clone()
    v = bad.view(-1)[5].double()
    bad.view(-1)[5] = (v + 2 * ks.ulp(v.abs(), torch.float16)).to(torch.float16)
    outs = list(res.outputs)
    outs[3] = (bad, y2, y3)
    checks = ks.compare(cfg, inputs, outs)
    assert not checks[0].passed and "rank 3" in checks[0].detail
    # one element of y2 changed: y2 must be bit-exact
    bad2 = y2.clone()
    bad2.view(-1)[0] = -bad2.view(-1)[0] - 1
    outs[3] = (y1, bad2, y3)
    assert not ks.compare(cfg, inputs, outs)[1].passed


def test_tolerance_is_half_an_ulp_plus_the_fp32_terms():
    ref = torch.tensor([1.0, 1000.0, 1e-6], dtype=torch.float64)
    scale = torch.zeros(3, dtype=torch.float64)
    a = ks.allowed_error(ref, scale, 64, torch.float16, act=False)
    assert torch.equal(a, torch.tensor([2.0 ** -11, 0.25, 2.0 ** -25], dtype=torch.float64))
    b = ks.allowed_error(ref, scale, 64, torch.bfloat16, act=False)
    assert float(b[0]) == 2.0 ** -8
    s = torch.ones(3, dtype=torch.float64)
    c = ks.allowed_error(torch.zeros(3, dtype=torch.float64), s, 64, torch.float16, act=True,
                         pre_activation=torch.full((3,), 2.0, dtype=torch.float64))
    d = 1.2 * 65 * 2.0 ** -24 + 2.0 ** -16 * 2
    assert torch.allclose(c, 0.5 * ks.ulp(torch.full((3,), d, dtype=torch.float64), torch.float16) + d)


def _cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ks.ROOT / "python"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "moe_mc2", "kernel-sim", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_passes_and_prints_errors_per_output():
    p = _cli("--ep", "2", "--tp", "2", "--E", "4", "--C", "6", "--H", "40", "--M", "76", "--dtype", "bf16",
             "--act", "FastGELU", "--shard-type", "0", "--bias", "3d", "--transpose-weight", "--y2", "--y3",
             "--seed", "3")
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    for line in ("y1: max abs", "y2: bit-exact", "y3: max abs", "tolerance: |out - ref| <= 0.5 ulp_bf16"):
        assert line in out, out
    assert out.rstrip().endswith("PASS")


def test_cli_exits_1_on_a_model_error():
    p = _cli("--kernel", "unaligned_datacopy", "--E", "4", "--C", "8", "--H", "32", "--M", "32")
    assert p.returncode == 1
    assert "not a multiple of 32 bytes" in p.stdout and p.stdout.rstrip().endswith("FAIL")


def test_cli_exits_1_on_an_invalid_call():
    p = _cli("--E", "3")
    assert p.returncode == 1 and "[E.multiple]" in p.stdout
