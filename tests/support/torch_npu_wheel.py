"""The parts of the `torch-npu` wheel the tests check against, without installing torch_npu.

Installing torch_npu on a machine without CANN makes `import torch` fail, so the wheel is only
downloaded (`pip download --no-deps`) and two parts of it are unpacked under build/ (git-ignored):
  - torchair's Python tree (`torch_npu/dynamo/torchair/**.py`, BSD-3-Clause) as a top-level
    `torchair` package: `torchair_root` goes on sys.path; its native modules are not taken;
  - torch_npu's C++ headers (`torch_npu/include/**`): `include_root`.
Nothing unpacked here is ever committed. `python tests/support/torch_npu_wheel.py` fetches
ahead of time and prints the paths.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL_SPEC = "torch-npu==2.13.0"
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MOE_MC2_TORCH_NPU_CACHE", ROOT / "build" / "torch_npu-2.13.0"))

_TORCHAIR_PREFIX = "torch_npu/dynamo/torchair/"
_INCLUDE_PREFIX = "torch_npu/include/"


class WheelUnavailable(RuntimeError):
    """The wheel could not be had (no registry reachable); the message says why."""


@dataclasses.dataclass(frozen=True)
class TorchNpuWheel:
    wheel: Path
    torchair_root: Path  # holds the package directory `torchair/`
    include_root: Path  # torch_npu's include/ (torch_npu/csrc/..., third_party/acl/inc, ...)

    @property
    def torchair_package(self) -> Path:
        return self.torchair_root / "torchair"


def _download(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob("torch_npu-*.whl"))
    if found:
        return found[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
           "--only-binary=:all:", WHEEL_SPEC, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WheelUnavailable(f"'pip download {WHEEL_SPEC}' did not finish: {exc}") from exc
    found = sorted(dest.glob("torch_npu-*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise WheelUnavailable(f"'pip download {WHEEL_SPEC}' failed: {' / '.join(tail)}")
    return found[-1]


def _unpack(wheel: Path, prefix: str, dest: Path, keep) -> None:
    """Members under `prefix` that `keep` accepts, to dest (prefix stripped); once per wheel."""
    stamp = dest / ".unpacked-from"
    if stamp.is_file() and stamp.read_text() == wheel.name:
        return
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.startswith(prefix) and not member.endswith("/") and keep(member):
                target = dest / member[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
    stamp.write_text(wheel.name)


def ensure(cache: Path = CACHE) -> TorchNpuWheel:
    """Download (once) and unpack (once) the wheel's torchair sources and C++ headers."""
    wheel = _download(cache / "wheel")
    torchair_root = cache / "torchair_py"
    include_root = cache / "include"
    _unpack(wheel, _TORCHAIR_PREFIX, torchair_root / "torchair", lambda m: m.endswith(".py"))
    _unpack(wheel, _INCLUDE_PREFIX, include_root, lambda m: True)
    return TorchNpuWheel(wheel, torchair_root, include_root)


if __name__ == "__main__":
    try:
        got = ensure()
    except WheelUnavailable as exc:
        print(f"torch_npu wheel unavailable: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"wheel          {got.wheel}\ntorchair root  {got.torchair_root}\ninclude root   {got.include_root}")
