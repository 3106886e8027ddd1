"""Bad calls executed on every rank of a world: each must raise before any collective."""
from __future__ import annotations

import os

import torch

import moe_mc2


def _good(ctx):
    ep, tp = ctx.ep, ctx.tp
    x = torch.randn(2 * ep, 3, 8, dtype=torch.bfloat16)
    w = torch.randn(2, 8, 6, dtype=torch.bfloat16)
    kw = dict(bias=torch.randn(2, 1, 6), group_ep=ctx.group_ep, group_ep_worldsize=ep, group_tp=ctx.group_tp,
              group_tp_worldsize=tp, shard_type=1, act_type="gelu")
    return x, w, kw


def bad_calls(ctx):
    """(name, expected exception type, rule id, x, weight, kwargs): each breaks one rule."""
    x, w, kw = _good(ctx)
    bf, f16 = torch.bfloat16, torch.float16
    cases = [
        ("shard_type", ValueError, "shard_type.value", x, w, dict(kw, shard_type=2)),
        ("act name", ValueError, "act_type.value", x, w, dict(kw, act_type="tanh")),
        ("act int", ValueError, "act_type.value", x, w, dict(kw, act_type=7)),
        ("act type", TypeError, "act_type.value", x, w, dict(kw, act_type=1.5)),
        ("ep size not allowed", ValueError, "ep.world_size", x, w, dict(kw, group_ep_worldsize=3)),
        ("tp size not allowed", ValueError, "tp.world_size", x, w, dict(kw, group_tp_worldsize=32)),
        ("empty group", ValueError, "group.name", x, w, dict(kw, group_ep="")),
        ("long group", ValueError, "group.name", x, w, dict(kw, group_tp="g" * 128)),
        ("same groups", ValueError, "group.distinct", x, w, dict(kw, group_tp=kw["group_ep"])),
        ("x 2-D", ValueError, "x.rank", x[0], w, kw),
        ("x int", TypeError, "x.dtype", x.to(torch.int32), w, kw),
        ("x float64", TypeError, "x.dtype", x.double(), w, kw),
        ("weight 2-D", ValueError, "weight.rank", x, w[0], kw),
        ("weight dtype", TypeError, "weight.dtype", x, w.to(f16), kw),
        ("E too big", ValueError, "E.range", torch.zeros(2050, 1, 8, dtype=bf), w, kw),
        ("E not multiple", ValueError, "E.multiple", torch.zeros(2 * ctx.ep + 1, 3, 8, dtype=bf), w, kw),
        ("weight experts", ValueError, "weight.experts", x, torch.zeros(3, 8, 6, dtype=bf), kw),
        ("H too big", ValueError, "H.range", torch.zeros(2 * ctx.ep, 1, 65536, dtype=bf),
         torch.zeros(2, 65536, 1, dtype=bf), dict(kw, bias=None)),
        ("weight hidden", ValueError, "weight.hidden", x, torch.zeros(2, 9, 6, dtype=bf), kw),
        ("N too big", ValueError, "N.range", x, torch.zeros(2, 8, 65536, dtype=bf), dict(kw, bias=None)),
        ("C zero", ValueError, "C.positive", torch.zeros(2 * ctx.ep, 0, 8, dtype=bf), w, kw),
        ("bias 1-D", ValueError, "bias.rank", x, w, dict(kw, bias=torch.zeros(6))),
        ("bias shape", ValueError, "bias.shape", x, w, dict(kw, bias=torch.zeros(2, 2, 6))),
        ("bias dtype", TypeError, "bias.dtype", x, w, dict(kw, bias=torch.zeros(2, 6, dtype=bf))),
        ("fp16 bias dtype", TypeError, "bias.dtype", x.to(f16), w.to(f16), dict(kw, bias=torch.zeros(2, 6))),
        ("unknown group", ValueError, "group.exists", x, w, dict(kw, group_ep="no-such-group")),
        # shard_type 1 shapes do not depend on tp, so only the real group size can object
        ("group size", ValueError, "group.size", x, w, dict(kw, group_tp_worldsize=ctx.tp * 2)),
        ("shard 0 H", ValueError, "weight.hidden", x, w, dict(kw, shard_type=0)),  # H = 8 * tp != 8
        # a wrong world size is a group problem, not the weight shape it would imply
        ("ep size of another group", ValueError, "group.size", x, w, dict(kw, group_ep_worldsize=ctx.ep * 2)),
        # Python types: the schema would turn True into 1 and "False" into True
        ("shard_type bool", TypeError, "shard_type.value", x, w, dict(kw, shard_type=True)),
        ("act_type bool", TypeError, "act_type.value", x, w, dict(kw, act_type=True)),
        ("flag str", TypeError, "flag.type", x, w, dict(kw, need_allgather_out="False")),
        ("flag int", TypeError, "flag.type", x, w, dict(kw, need_activation_feature=1)),
        ("world size bool", TypeError, "tp.world_size", x, w, dict(kw, group_tp_worldsize=True)),
        ("group None", TypeError, "group.name", x, w, dict(kw, group_ep=None)),
        ("group int", TypeError, "group.name", x, w, dict(kw, group_tp=0)),
        ("x list", TypeError, "x.type", x.tolist(), w, kw),
        ("x numpy", TypeError, "x.type", x.float().numpy(), w, kw),
        ("weight None", TypeError, "weight.type", x, None, kw),
        ("bias list", TypeError, "bias.type", x, w, dict(kw, bias=[0.0] * 6)),
        ("meta weight", ValueError, "weight.device", x, w.to("meta"), kw),
        ("meta bias", ValueError, "bias.device", x, w, dict(kw, bias=kw["bias"].to("meta"))),
        ("tiles env", ValueError, "env.value", x, w, dict(kw, _env=("MOE_MC2_TILES", "abc"))),
        ("expert tiles env", ValueError, "env.value", x, w, dict(kw, _env=("MOE_MC2_EXPERT_TILES", "-1"))),
        ("agreement env", ValueError, "env.value", x, w, dict(kw, _env=("MOE_MC2_AGREEMENT", "sometimes"))),
    ]
    return cases


def run_bad_calls(ctx):
    """{name: (exception type name, rule id, message)} for every bad call, then one good call."""
    out = {}
    for name, _etype, _rule, x, w, kw in bad_calls(ctx):
        kw = dict(kw)
        env = kw.pop("_env", None)
        old = None if env is None else os.environ.get(env[0])
        try:
            if env is not None:
                os.environ[env[0]] = env[1]
            moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)
            out[name] = ("no exception", None, "")
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out[name] = (type(exc).__name__, getattr(exc, "rule_id", None), str(exc),
                         isinstance(exc, ValueError), isinstance(exc, TypeError))
        finally:
            if env is not None:
                if old is None:
                    del os.environ[env[0]]
                else:
                    os.environ[env[0]] = old
    x, w, kw = _good(ctx)
    y1, _, _ = moe_mc2.npu_alltoall_allgather_bmm(x, w, **kw)  # the world is still usable
    out["__good__"] = tuple(y1.shape)
    return out


def expected(ctx_like):
    return {name: (etype, rule) for name, etype, rule, *_ in bad_calls(ctx_like)}
