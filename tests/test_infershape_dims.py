"""op_proto's shape inference with unknown dims (-1) and unknown rank (-2), compiled without CANN.

op_proto/aag_bmm_infer_dims.h is what the gert adapter (aag_bmm_infershape.cpp) calls; it is
portable C++, so it is built here with the portable core and driven line by line
(tests/infershape/infer_dims_driver.cpp). Expected shapes are the contract's (y1 = y3 = (El, ep*C, M/tp),
y2 = (El, ep*C, H), not produced = [0, 0, 0]) with -1 wherever a size depends on an unknown,
which is what CANN's infershape of the built-in op reports for -1 dims.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "infershape", "infer_dims_driver.cpp")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.fail("no C++ compiler (build.sh installs g++)")
    exe = str(tmp_path_factory.mktemp("infer") / "infer_dims")
    cmd = [cxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{ROOT}/op_proto", f"-I{ROOT}/op_host", DRIVER,
           f"{ROOT}/op_host/core/aag_bmm_rules.cpp", "-o", exe]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    return exe


def _line(x, w, b=None, *, ep=2, tp=2, shard=1, act=1, y2=True, y3=True, gep="ep", gtp="tp"):
    dims = lambda d: ",".join(map(str, d))  # noqa: E731
    return (f"x={dims(x)} w={dims(w)} b={'-' if b is None else dims(b)} ep={ep} tp={tp} shard={shard} act={act} "
            f"y2={int(y2)} y3={int(y3)} gep={gep} gtp={gtp}")


def run(driver, cases):
    text = "\n".join(_line(*c[0], **c[1]) for c in cases) + "\n"
    r = subprocess.run([driver], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = []
    for ln in r.stdout.splitlines():
        word, *rest = ln.split()
        if word == "OK":
            out.append(tuple([int(v) for v in part.split(",")] for part in rest))
        else:
            out.append(rest[0])
    assert len(out) == len(cases)
    return out


U = -1  # unknown dim
R = [-2]  # unknown rank
Z = [0, 0, 0]  # not produced

# ((x, w[, b]), attrs, expected (y1, y2, y3) or the failing rule); E=4 El=2, C=6 (C/tp=3), H=8, N=5
OK_CASES = {
    "static": (([4, 3, 8], [2, 8, 5]), {}, ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "static, nothing optional": (([4, 3, 8], [2, 8, 5]), dict(y2=False, y3=False), ([2, 12, 5], Z, Z)),
    "y3 asked without activation": (([4, 3, 8], [2, 8, 5]), dict(act=0), ([2, 12, 5], [2, 12, 8], Z)),
    "token dim unknown": (([4, U, 8], [2, 8, 5]), dict(y3=False), ([2, U, 5], [2, U, 8], Z)),
    "E unknown in x": (([U, 3, 8], [2, 8, 5]), {}, ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "El unknown in weight": (([4, 3, 8], [U, 8, 5]), {}, ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "E unknown everywhere": (([U, 3, 8], [U, 8, 5]), {}, ([U, 12, 5], [U, 12, 8], [U, 12, 5])),
    "H known only in x": (([4, 3, 8], [2, U, 5]), {}, ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "N unknown": (([4, 3, 8], [2, 8, U]), {}, ([2, 12, U], [2, 12, 8], [2, 12, U])),
    "all dims unknown": (([U, U, U], [U, U, U]), {}, ([U, U, U], [U, U, U], [U, U, U])),
    "all unknown, outputs off": (([U, U, U], [U, U, U]), dict(y2=False, y3=False), ([U, U, U], Z, Z)),
    "x of unknown rank": ((R, [2, 8, 5]), {}, ([2, U, 5], [2, U, 8], [2, U, 5])),
    "weight of unknown rank": (([4, 3, 8], R), {}, ([2, 12, U], [2, 12, 8], [2, 12, U])),
    "both of unknown rank": ((R, R), dict(y2=False), ([U, U, U], Z, [U, U, U])),
    "shard 0, H from the weight": (([4, 6, U], [2, 8, 5]), dict(shard=0), ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "shard 0, H from x": (([4, 6, 4], [2, U, 5]), dict(shard=0), ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "shard 0, token dim unknown": (([4, U, 4], [2, 8, 5]), dict(shard=0), ([2, U, 5], [2, U, 8], [2, U, 5])),
    "bias with unknown dims": (([4, U, 8], [2, 8, 5], [U, 1, U]), {}, ([2, U, 5], [2, U, 8], [2, U, 5])),
    "bias of unknown rank": (([4, 3, 8], [2, 8, 5], R), {}, ([2, 12, 5], [2, 12, 8], [2, 12, 5])),
    "El only from the bias": (([U, 3, 8], [U, 8, 5], [3, 5]), {}, ([U, 12, 5], [U, 12, 8], [U, 12, 5])),
}

FAIL_CASES = {
    "experts disagree": (([4, 3, 8], [3, U, 5]), {}, "weight.experts"),
    "E not a multiple of ep": (([5, U, 8], [U, 8, 5]), {}, "E.multiple"),
    "E forced out of range": (([U, 3, 8], [1100, 8, 5]), {}, "E.range"),
    "H of x and weight disagree": (([U, 3, 8], [2, 6, 5]), {}, "weight.hidden"),
    "shard 0: H not tp * x cols": (([4, 6, 3], [2, 8, U]), dict(shard=0), "weight.hidden"),
    "N out of range": (([U, 3, 8], [2, U, 70000]), {}, "N.range"),
    "C zero": (([4, 0, U], [2, 8, 5]), {}, "C.positive"),
    "bias N disagrees": (([4, U, 8], [2, 8, 5], [2, 6]), {}, "bias.shape"),
    "bias middle dim": (([4, U, 8], [2, 8, 5], [2, 3, 5]), {}, "bias.shape"),
    "bias 1-D": (([4, U, 8], [2, 8, 5], [5]), {}, "bias.rank"),
    "x 2-D": (([4, U], [2, 8, 5]), {}, "x.rank"),
    "weight 4-D": (([4, U, 8], [2, 8, 5, 1]), {}, "weight.rank"),
    "ep not a world size": (([4, U, 8], [2, 8, 5]), dict(ep=3), "ep.world_size"),
    "ep zero": (([U, U, U], R), dict(ep=0), "ep.world_size"),
    "same group twice": (([4, U, 8], [2, 8, 5]), dict(gtp="ep"), "group.distinct"),
    "act out of range": (([4, U, 8], [2, 8, 5]), dict(act=7), "act_type.value"),
    "shard type out of range": (([4, U, 8], [2, 8, 5]), dict(shard=2), "shard_type.value"),
}


def test_known_and_unknown_dims(driver):
    got = run(driver, [(v[0], v[1]) for v in OK_CASES.values()])
    for (name, (_, _, want)), g in zip(OK_CASES.items(), got):
        assert g == want, name


def test_contradictions_among_known_dims_and_bad_attributes_fail(driver):
    got = run(driver, [(v[0], v[1]) for v in FAIL_CASES.values()])
    for (name, (_, _, rule)), g in zip(FAIL_CASES.items(), got):
        assert g == rule, name


@pytest.mark.parametrize("bad", ["-3", "4,-2,8"])
def test_malformed_dims_fail(driver, bad):
    r = subprocess.run([driver], input=f"x={bad} w=2,8,5 b=- ep=2 tp=2 shard=1 act=1 y2=1 y3=1 gep=a gtp=b\n",
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("FAIL"), r.stdout


def test_msopst_cases_declare_what_infershape_infers(driver):
    # tests/msopst's output shapes (incl. [0, 0, 0] for outputs not produced) are op_proto's own answer
    import json

    cases = json.load(open(os.path.join(ROOT, "tests", "msopst", "AlltoAllAllGatherBatchMatMul_case.json"),
                           encoding="utf-8"))
    calls, wants = [], []
    for case in cases:
        at = {a["name"]: a["value"] for a in case["attr"]}
        d = {x["name"]: x for x in case["input_desc"] + case["output_desc"]}
        w = list(d["weight"]["shape"])
        if at["transpose_weight"]:  # stored (El, M/tp, H): the driver takes the logical weight
            w = [w[0], w[2], w[1]]
        bias_type = d["bias"]["type"][0] if isinstance(d["bias"]["type"], list) else d["bias"]["type"]
        calls.append(((d["x"]["shape"], w, None if bias_type == "UNDEFINED" else d["bias"]["shape"]),
                      dict(ep=at["ep_world_size"], tp=at["tp_world_size"], shard=at["x_shard_type"],
                           act=at["act_type"], y2=at["output_y2_flag"], y3=at["output_y3_flag"],
                           gep=at["group_ep"], gtp=at["group_tp"])))
        wants.append(tuple(list(d[n]["shape"]) for n in ("y1", "y2", "y3")))
    assert run(driver, calls) == wants


def test_the_adapter_calls_it():
    # the gert adapter must go through InferDims (a static-only path would reject -1 again)
    text = open(os.path.join(ROOT, "op_proto", "aag_bmm_infershape.cpp"), encoding="utf-8").read()
    assert '#include "aag_bmm_infer_dims.h"' in text and "moe_mc2_infer::InferDims(a)" in text
