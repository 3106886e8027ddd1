"""Import the real torchair (the torch-npu wheel's Python tree) in this process, natives stood in.

`load()` fetches the wheel once (torch_npu_wheel.ensure), installs the three native stand-ins
(torchair_native.install), puts the unpacked tree first on sys.path and imports `torchair`.
Importing torchair installs SIGINT/SIGTERM handlers that finalize GE and then ignore the signal;
they are put back as they were, so Ctrl-C still stops pytest. `unload()` takes the tree off
sys.path again (modules already imported stay in sys.modules), so tests that check the absent
case still see no importable torchair.
"""
from __future__ import annotations

import importlib
import signal
import sys

from . import torch_npu_wheel, torchair_native

WheelUnavailable = torch_npu_wheel.WheelUnavailable
_PATH = None


def load():
    """The real `torchair` module (raises WheelUnavailable when the wheel cannot be had)."""
    global _PATH
    wheel = torch_npu_wheel.ensure()
    torchair_native.install()
    root = str(wheel.torchair_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    _PATH = root
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        module = importlib.import_module("torchair")
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
    if not str(getattr(module, "__file__", "")).startswith(root):
        raise RuntimeError(f"imported torchair from {module.__file__}, not from the wheel's tree under {root}")
    return module


def unload() -> None:
    global _PATH
    if _PATH is not None and _PATH in sys.path:
        sys.path.remove(_PATH)
    _PATH = None
