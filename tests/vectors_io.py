"""Reading tests/vectors/*.json (shared with the C++ tests) into Python values."""
from __future__ import annotations

import json
import os

import torch

HERE = os.path.join(os.path.dirname(__file__), "vectors")
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def load(name: str) -> list:
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)["cases"]


def dtype(name):
    return None if name is None else DTYPES.get(name, name)


def case_kwargs(case: dict) -> dict:
    """check_forward's arguments for one vector case (shapes and dtypes only)."""
    return dict(
        x_shape=tuple(case["x"]), x_dtype=dtype(case["dtype"]),
        weight_shape=tuple(case["weight"]), weight_dtype=dtype(case.get("weight_dtype", case["dtype"])),
        bias_shape=None if case["bias"] is None else tuple(case["bias"]), bias_dtype=dtype(case["bias_dtype"]),
        group_ep=case["group_ep"], ep=case["ep"], group_tp=case["group_tp"], tp=case["tp"],
        shard_type=case["shard_type"], act_type=case["act_type"])
