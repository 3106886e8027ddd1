"""msopst expected-data function of AlltoAllAllGatherBatchMatMul, built on moe_mc2.reference.

msopst runs the op on one device and hands this function that rank's inputs only, but the op's
result on rank (i, t) depends on the x of every rank. The golden is therefore defined for a
*symmetric world*: every rank of the ep x tp world is fed the same generated inputs (run
`python aag_bmm_expect.py --materialize DIR` once and give every rank the case file it writes,
whose inputs point at the same fixed-seed .bin files). This rank's place in the world is
RANK_ID (HCCL's world-rank variable; i = RANK_ID % ep, t = RANK_ID // ep), 0 if unset.

Outputs not produced (output_y2_flag / output_y3_flag false, y3 without activation) are empty.
bfloat16 goldens are returned as float32 arrays (numpy has no bfloat16).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

_TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float": torch.float32}


def _tensor(desc):
    """An msopst input (dict with 'value', 'dtype') or a plain array -> torch tensor of its type."""
    if desc is None:
        return None
    value = desc["value"] if isinstance(desc, dict) else desc
    dtype = _TORCH.get(str(desc.get("dtype", ""))) if isinstance(desc, dict) else None
    arr = np.asarray(value)
    if arr.dtype.name == "bfloat16":  # ml_dtypes arrays: reinterpret the bits
        t = torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(dtype) if dtype is not None else t


def _numpy(t: torch.Tensor) -> np.ndarray:
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def golden(x, weight, bias, *, ep, tp, shard_type, act_type, transpose_weight, y2_flag, y3_flag, rank):
    """(y1, y2, y3) of world rank `rank` when every rank holds these inputs (torch tensors)."""
    from moe_mc2 import reference

    w = weight.transpose(1, 2) if transpose_weight else weight  # stored (El, M/tp, H) -> logical view
    world = ep * tp
    outs = reference.forward([x] * world, [w] * world, None if bias is None else [bias] * world, ep=ep, tp=tp,
                             shard_type=shard_type, act_type=act_type, need_allgather_out=y2_flag,
                             need_activation_feature=y3_flag)
    return outs[rank]


def calc_expect_func(x, weight, bias=None, y1=None, y2=None, y3=None, *, group_ep="", group_tp="",
                     ep_world_size, tp_world_size, x_shard_type=0, act_type=0, transpose_weight=False,
                     output_y2_flag=False, output_y3_flag=False, rank=None, **_ignored):
    """msopst's entry point: inputs/outputs by their GE names, attributes as keywords."""
    if rank is None:
        rank = int(os.environ.get("RANK_ID", "0"))
    outs = golden(_tensor(x), _tensor(weight), _tensor(bias), ep=int(ep_world_size), tp=int(tp_world_size),
                  shard_type=int(x_shard_type), act_type=int(act_type), transpose_weight=bool(transpose_weight),
                  y2_flag=bool(output_y2_flag), y3_flag=bool(output_y3_flag), rank=rank)
    return [_numpy(t) for t in outs]


# ---- symmetric-world inputs for every rank ------------------------------------------------------

SEED = 20240601  # fixed: every rank must read identical inputs


def case_inputs(case: dict, seed: int = SEED) -> dict:
    """The case's inputs, generated deterministically from (seed, case_name): name -> tensor."""
    gen = torch.Generator().manual_seed(seed + sum(ord(c) for c in case["case_name"]))
    out = {}
    for desc in case["input_desc"]:
        if desc["type"] == "UNDEFINED":  # absent optional input
            out[desc["name"]] = None
            continue
        lo, hi = desc["value_range"][0]
        dtype = _TORCH[desc["type"][0] if isinstance(desc["type"], list) else desc["type"]]
        t = torch.rand(desc["shape"], generator=gen, dtype=torch.float64) * (hi - lo) + lo
        out[desc["name"]] = t.to(dtype)
    return out


def materialize(case_file: str, out_dir: str, seed: int = SEED) -> str:
    """Write every case's inputs as .bin files and a case file whose inputs name them (`value`)."""
    cases = json.load(open(case_file, encoding="utf-8"))
    os.makedirs(out_dir, exist_ok=True)
    for case in cases:
        for name, t in case_inputs(case, seed).items():
            if t is None:
                continue
            path = os.path.abspath(os.path.join(out_dir, f"{case['case_name']}_{name}.bin"))
            raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
            raw.numpy().tofile(path)
            next(d for d in case["input_desc"] if d["name"] == name)["value"] = path
        case["calc_expect_func_file"] = f"{os.path.abspath(__file__)}:calc_expect_func"
    out = os.path.join(out_dir, os.path.basename(case_file))
    json.dump(cases, open(out, "w", encoding="utf-8"), indent=2)
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--materialize":
        here = os.path.dirname(os.path.abspath(__file__))
        print(materialize(os.path.join(here, "AlltoAllAllGatherBatchMatMul_case.json"), sys.argv[2]))
    else:
        sys.exit("usage: aag_bmm_expect.py --materialize OUT_DIR")
