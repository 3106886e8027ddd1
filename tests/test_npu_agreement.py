"""The fused NPU paths agree across ranks like the portable runtime: every rank agrees or every
rank raises, before the kernel's collectives.

The ranks are gloo CPU ranks; each routes the op to a fused kernel (the moe_mc2 package or CANN's
built-in) through a recording stand-in of the aclnn bridge, so what is checked is the decision
taken before the launch: which ranks reach the kernel, and what every rank raises otherwise.
"""
from __future__ import annotations

import torch

from moe_mc2.contract.errors import ContractViolation

ARGS = dict(group_ep_worldsize=2, group_tp_worldsize=2)


class _Recorder:
    def __init__(self):
        self.calls = []

    def bind(self, *args):
        pass

    def forward(self, *args):
        self.calls.append("forward")

    def adjoint(self, *args):
        self.calls.append("adjoint")


def run_fused(ctx, op, kinds, *, bad_rank=None, bad=None, agree=True):
    """One call of `op` on this rank through the route kinds[rank]; (error class, rule id,
    message, bridge calls). `bad` changes this rank's call when it is `bad_rank`."""
    from moe_mc2.integration import npu
    from moe_mc2.runtime import agreement

    saved = (npu._ROUTES, npu._bound, npu._said, npu.load_extension)
    ext = _Recorder()
    kind = kinds[ctx.rank]
    route = npu.Route(op, kind, f"/{kind}.so", missing="")
    npu._ROUTES, npu._bound, npu._said = {"forward": route, "adjoint": route}, {}, set()
    npu.load_extension = lambda: ext
    dtype, shard = torch.float16, 1
    if ctx.rank == bad_rank and bad == "float32":
        dtype = torch.float32
    if ctx.rank == bad_rank and bad == "shard_type":
        shard = 0
    groups = dict(group_ep=ctx.group_ep, group_tp=ctx.group_tp)
    try:
        with agreement.enabled_as(agree):
            if op == "forward":
                x, w = torch.randn(4, 3, 8).to(dtype), torch.randn(2, 8, 5).to(dtype)
                npu._forward_npu(x, w, **groups, **ARGS, shard_type=shard)
            else:
                x, w = torch.randn(2, 12, 5).to(dtype), torch.randn(2, 5, 8).to(dtype)
                npu._adjoint_npu(x, w, **groups, **ARGS, shard_type=shard)
        return None, None, "", ext.calls
    except ContractViolation as exc:
        return type(exc).__name__, exc.rule_id, str(exc), ext.calls
    finally:
        npu._ROUTES, npu._bound, npu._said, npu.load_extension = saved


def _every_rank_raised(outcomes, rule, *needles):
    assert len({o[:3] for o in outcomes}) == 1, [o[2] for o in outcomes]  # the same error everywhere
    for cls, rule_id, message, calls in outcomes:
        assert cls is not None and rule_id == rule, message
        assert calls == [], "a rank launched the kernel although the call was refused"
        for needle in needles:
            assert needle in message, message


def test_ranks_that_found_the_same_kernel_launch_it(world_2x2):
    for op in ("forward", "adjoint"):
        for kind in ("package", "builtin"):
            outcomes = world_2x2.run(run_fused, op, [kind] * 4)
            assert [o[0] for o in outcomes] == [None] * 4, [o[2] for o in outcomes]
            assert [o[3] for o in outcomes] == [[op]] * 4


def test_a_rank_with_another_kernel_makes_every_rank_raise(world_2x2):
    # the OPP package installed on three hosts only: rank 3 would run CANN's built-in kernel
    outcomes = world_2x2.run(run_fused, "forward", ["package"] * 3 + ["builtin"])
    _every_rank_raised(outcomes, "ranks.agree", "the ranks disagree on kernel", "CANN's built-in kernel on rank [3]",
                       "describe_routes()")


def test_a_call_a_rank_rejects_makes_every_rank_raise(world_2x2):
    outcomes = world_2x2.run(run_fused, "forward", ["builtin"] * 4, bad_rank=1, bad="float32")
    _every_rank_raised(outcomes, "x.dtype", "on rank 1 (i=1, t=0)", "on the NPU")


def test_a_differing_call_makes_every_rank_raise(world_2x2):
    outcomes = world_2x2.run(run_fused, "adjoint", ["builtin"] * 4, bad_rank=2, bad="shard_type")
    _every_rank_raised(outcomes, "ranks.agree", "npu_bmm_reducescatter_alltoall", "shard_type")


def test_without_the_agreement_each_rank_checks_only_its_own_call(world_2x2):
    outcomes = world_2x2.run(run_fused, "forward", ["package"] * 4, agree=False)
    assert [o[3] for o in outcomes] == [["forward"]] * 4
