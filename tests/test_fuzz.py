"""Random valid calls against the single-process reference on a 2 x 2 world (hypothesis).

Shapes, dtypes, activations (names in any case, or ints), bias forms, weight and x layouts, output
flags, forced tile counts, and the layout (the whole 2 x 2 world, or a pure ep / pure tp layer in
it) are drawn; every rank checks its outputs against the reference of its own rank. Bounded and
derandomized: the same examples on every run.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forward_cases import run_cases
from layout_cases import run_layout_cases

ACTS = ["None", "gelu", "SILU", "Relu", "fastgelu", 0, 1, 2, 3, 4]


@st.composite
def calls(draw):
    layout = draw(st.sampled_from(["2x2", "2x2", "tp=1", "ep=1", "ep=tp=1"]))
    tp = 1 if layout in ("tp=1", "ep=tp=1") else 2
    ep = 1 if layout in ("ep=1", "ep=tp=1") else 2
    shard = draw(st.sampled_from([0, 1]))
    El = draw(st.integers(1, 3))
    E = max(2, El * ep)  # E >= 2 (with ep = 1, El = E)
    C = tp * draw(st.integers(1, 5)) if shard == 1 else draw(st.integers(1, 9))
    H = tp * draw(st.integers(1, 6)) if shard == 0 else draw(st.integers(1, 12))
    N = draw(st.integers(1, 9))
    x_rows = C // tp if shard == 1 else C
    case = dict(E=E, C=C, H=H, N=N, shard=shard, act=draw(st.sampled_from(ACTS)),
                dtype=draw(st.sampled_from(["float16", "bfloat16", "float32"])),
                bias=draw(st.sampled_from([None, 2, 3])),
                # (strides only differ where both dims are > 1)
                transposed=draw(st.booleans()) and H > 1 and N > 1,
                noncontig_x=draw(st.booleans()) and E > 1 and x_rows > 1, y2=draw(st.booleans()),
                y3=draw(st.booleans()),
                tiles=draw(st.one_of(st.none(), st.integers(1, 5))),
                expert_tiles=draw(st.one_of(st.none(), st.integers(1, 3))), seed=draw(st.integers(0, 2 ** 16)))
    return layout, case


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(call=calls())
def test_random_valid_calls_match_the_reference(world_2x2, call):
    layout, case = call
    if layout == "2x2":
        results = world_2x2.run(run_cases, [case])
    else:
        results = world_2x2.run(run_layout_cases, layout, [case])
    for rank, res in enumerate(results):
        assert not res["failed"], f"{layout} rank {rank}: {res['failed']}"
