"""Every rule id the project's errors carry, with its meaning in one line.

`docs/contract.md` explains each of them (tests/test_contract_doc.py checks that every id listed
here appears there, and that the Python sources and the C++ core raise no id missing here).
ContractViolation refuses an id that is not listed.
"""
from __future__ import annotations

RULES = {
    # Python types of the entry points' arguments (checked before anything else)
    "x.type": "x is a torch.Tensor",
    "weight.type": "weight is a torch.Tensor",
    "bias.type": "bias is None or a torch.Tensor",
    "flag.type": "need_allgather_out / need_activation_feature are bool (or None for False)",
    # attributes
    "shard_type.value": "shard_type is the int 0 or 1",
    "act_type.value": "act_type is an activation name (any case) or its int 0-4",
    "ep.world_size": "group_ep_worldsize is an int in {2, 4, 8, 16} (the portable runtime also takes 1)",
    "tp.world_size": "group_tp_worldsize is an int in {2, 4, 8, 16} (the portable runtime also takes 1)",
    "group.name": "a group argument is a ProcessGroup or a non-empty name shorter than 128 characters",
    "group.distinct": "group_ep and group_tp are different groups",
    "group.exists": "a group name names a registered group (c10d name or HCCL communicator name)",
    "group.size": "the named group has group_*_worldsize ranks",
    "group.member": "the calling rank belongs to the named group",
    # tensors
    "x.rank": "x is 3-D",
    "x.dtype": "x is float16 or bfloat16 (float32 too on the portable runtime)",
    "weight.rank": "weight is 3-D",
    "weight.dtype": "weight has x's dtype",
    "weight.device": "weight is on x's device",
    "bias.device": "bias is on x's device",
    "E.range": "E (experts in total) is in [2, 2048]",
    "E.multiple": "E is a multiple of ep",
    "weight.experts": "weight.size(0) is E / ep",
    "H.range": "H is in [1, 65535]",
    "weight.hidden": "weight.size(1) is H",
    "N.range": "M / tp (weight.size(2)) is in [1, 65535]",
    "C.positive": "C > 0 (x's row dimension is not empty)",
    "bias.rank": "bias is 2-D or 3-D",
    "bias.shape": "bias is (E/ep, N) or (E/ep, 1, N)",
    "bias.dtype": "bias is float16 for float16 x, float32 otherwise",
    # the adjoint op only
    "rows.multiple": "adjoint: x.size(1) is ep * C",
    "C.multiple": "C is a multiple of tp where shard_type 1 splits C over tp",
    "H.multiple": "H is a multiple of tp where shard_type 0 splits H over tp",
    "weight.inner": "adjoint: weight.size(1) is x.size(2)",
    # problem sizes (demo, bench, ExpertMLP)
    "M.multiple": "M is a multiple of tp (each tp rank holds M / tp columns)",
    # settings
    "env.value": "a MOE_MC2_* environment setting has a valid value",
    # across ranks (the agreement before data moves)
    "ranks.agree": "every rank of the call makes the same call (shapes, dtypes, attributes, settings, plan)",
    "ranks.grid": "group_ep and group_tp form an ep x tp grid (each ep group meets each tp group in one rank)",
}
