"""ep = 1 or tp = 1 on the portable runtime (CANN's kernel needs 2, 4, 8 or 16: the NPU rules
keep refusing 1, see tests/test_vectors.py)."""
import pytest
import torch

from forward_cases import full_matrix
from layout_cases import run_layout_adjoint, run_layout_cases
from moe_mc2 import reference_adjoint

LAYOUTS = ["tp=1", "ep=1", "ep=tp=1"]


@pytest.mark.parametrize("name", LAYOUTS)
def test_forward_in_layout(world_2x2, name):
    # a slice of the full matrix: both shard types, every activation, dtype, bias form and layout
    cases = [c for n, c in enumerate(full_matrix(E=4, C=6, H=8, N=5)) if n % 29 == 0]
    cases += [dict(cases[0], tiles=3, expert_tiles=2), dict(cases[1], tiles=2)]
    for rank, res in enumerate(world_2x2.run(run_layout_cases, name, cases)):
        assert res["ran"] == len(cases)
        assert not res["failed"], f"{name} rank {rank}: {res['failed']}"


@pytest.mark.parametrize("name", LAYOUTS)
def test_adjoint_in_layout(world_2x2, name):
    for out, inputs, r, ep, tp in world_2x2.run(run_layout_adjoint, name, 11):
        ref = reference_adjoint.adjoint([a for a, _ in inputs], [b for _, b in inputs], ep=ep, tp=tp, shard_type=1,
                                        dtype=torch.float64)[r]
        assert out.shape == ref.shape
        assert (out.double() - ref).abs().max() <= 1e-5 * ref.abs().max()
