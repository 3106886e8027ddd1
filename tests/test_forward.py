"""The op on real gloo worlds against the single-process reference (docs/contract.md semantics)."""
import pytest

from forward_cases import full_matrix, run_cases

SMALL = dict(E=4, C=4, H=8, N=6)


def _assert_all_ranks_pass(results, expected_count):
    for rank, res in enumerate(results):
        assert res["ran"] == expected_count
        assert not res["failed"], f"rank {rank}: {len(res['failed'])} failing cases, e.g. {next(iter(res['failed'].items()))}"


def test_full_matrix_2x2(world_2x2):
    cases = full_matrix(**SMALL)
    assert len(cases) == 720
    _assert_all_ranks_pass(world_2x2.run(run_cases, cases), len(cases))


@pytest.mark.parametrize("world_name", ["world_4x2", "world_2x4"])
def test_matrix_slice_on_larger_worlds(world_name, request):
    world = request.getfixturevalue(world_name)
    # every activation, shard type, dtype, bias form and layout appears; E chosen so El > 1
    cases = [c for n, c in enumerate(full_matrix(E=16, C=8, H=16, N=10)) if n % 11 == 0]
    _assert_all_ranks_pass(world.run(run_cases, cases), len(cases))


def test_el_one_tails_and_noncontiguous_x(world_2x2):
    cases = []
    for shard in (0, 1):
        for dt in ("float16", "bfloat16", "float32"):
            base = dict(shard=shard, dtype=dt, act="Silu", bias=3, y2=True, y3=True)
            cases += [
                dict(base, E=2, C=10, H=8, N=6),  # El = 1
                dict(base, E=6, C=10, H=8, N=6, tiles=3),  # El = 3; 5 or 10 rows in 3 tiles: a tail
                dict(base, E=4, C=14, H=12, N=5, tiles=4, transposed=True),  # 7 or 14 rows, tail of 1 or 2
                dict(base, E=4, C=6, H=8, N=6, noncontig_x=True, tiles=2),
                dict(base, E=4, C=6, H=8, N=6, tiles=64),  # more tiles asked than rows: one row each
                dict(base, E=6, C=6, H=8, N=6, expert_tiles=2, tiles=2),  # expert parts x row chunks
                dict(base, E=10, C=4, H=8, N=6, expert_tiles=3, tiles=1),  # 5 experts in 3 parts: a tail
            ]
    _assert_all_ranks_pass(world_2x2.run(run_cases, cases), len(cases))


def test_seed_like_shapes_planned_tiles(world_2x2):
    """A larger call where the planner (not a forced count) picks several tiles."""
    cases = [dict(shard=s, dtype="bfloat16", act="FastGELU", bias=2, y2=True, y3=True, E=4, C=256, H=256, N=128)
             for s in (0, 1)]
    _assert_all_ranks_pass(world_2x2.run(run_cases, cases), len(cases))
