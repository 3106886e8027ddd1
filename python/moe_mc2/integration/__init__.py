"""Optional integrations: the torchair graph converter and the eager NPU kernels of both ops
(which kernel serves each op on an NPU: docs/npu.md).

`register_all()` runs at `import moe_mc2`. Each integration is attempted only when its
dependency is installed; a missing one is silent, a broken one is logged (never raised), so
importing moe_mc2 works on any machine.
"""
from __future__ import annotations

import importlib.util
import logging

log = logging.getLogger(__name__)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def register_all() -> dict:
    """{integration: registered?}; never raises."""
    done = {"torchair": False, "npu": False}
    # torch_npu first: torchair imports it, and the kernel must exist before graphs are traced.
    if _installed("torch_npu"):
        try:
            from . import npu
            done["npu"] = npu.register()
        except Exception as exc:  # noqa: BLE001 - a broken NPU stack must not break import
            log.warning("moe_mc2: NPU kernel not registered: %s: %s", type(exc).__name__, exc)
    if _installed("torchair"):
        try:
            from . import torchair as ta_converter
            done["torchair"] = ta_converter.register()
        except Exception as exc:  # noqa: BLE001
            log.warning("moe_mc2: torchair converter not registered: %s: %s", type(exc).__name__, exc)
    return done
