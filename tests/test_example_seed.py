"""examples/alltoall_allgather_bmm.py: with ProcessGroups under torchrun on CPU, and the seed's
group arguments (HCCL communicator names) where the backend is HCCL."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "alltoall_allgather_bmm.py")


def _example():
    spec = importlib.util.spec_from_file_location("seed_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_runs_under_torchrun_on_cpu_with_group_objects(tmp_path):
    ep, tp, E, C, H, M = 2, 2, 4, 8, 16, 24
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ep * tp}", EXAMPLE,
           "--ep", str(ep), "--tp", str(tp), "--E", str(E), "--C", str(C), "--H", str(H), "--M", str(M),
           "--act", "GELU", "--transpose-weight", "--save"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    El, rows, N = E // ep, ep * C, M // tp
    lines = sorted(re.findall(r"rank \d+: y1 \([\d, ]+\) y2 \([\d, ]+\) y3 \([\d, ]+\)", r.stdout))  # ranks interleave
    assert lines == [f"rank {k}: y1 {(El, rows, N)} y2 {(El, rows, H)} y3 (0, 0, 0)" for k in range(ep * tp)]
    sizes = [np.fromfile(tmp_path / f"y_{n}.bin", dtype=np.float32).size for n in range(3)]
    assert sizes == [El * rows * N, El * rows * H, 0]


class _Backend:
    def __init__(self, name):
        self.name = name

    def get_hccl_comm_name(self, rank):
        return f"{self.name}%eth0_60000_{rank}_1700000000"


class _Group:
    def __init__(self, name):
        self.name, self.devices = name, []

    def _get_backend(self, device):
        self.devices.append(str(device))
        return _Backend(self.name)


def test_on_hccl_the_op_gets_communicator_names_as_in_the_seed(monkeypatch):
    ex = _example()
    monkeypatch.setattr(ex.dist, "get_rank", lambda group=None: 5)
    monkeypatch.setattr(ex.torch, "device", lambda kind: kind)  # no "npu" device type in CPU torch
    ep, tp = _Group("ep"), _Group("tp")
    assert ex.group_arguments(ep, tp, "hccl") == ("ep%eth0_60000_5_1700000000", "tp%eth0_60000_5_1700000000")
    assert ep.devices == tp.devices == ["npu"]
    assert ex.group_arguments(ep, tp, "gloo") == (ep, tp)  # elsewhere: the ProcessGroups themselves
