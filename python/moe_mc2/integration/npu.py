"""Eager NPU kernel of `moe_mc2::npu_alltoall_allgather_bmm` (PrivateUse1).

With the moe_mc2 OPP package installed, calls aclnnAlltoAllAllGatherBatchMatMul through a small
torch_npu C++ extension (csrc/, built on first use). Without it, runs the portable runtime over
HCCL and says so once. The decisions are plain functions over an environment mapping and a
path predicate, so they are tested here without an NPU.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Mapping, Optional

import torch

from ..contract import rules
from ..contract.names import ACLNN_RUN, LIBRARY

log = logging.getLogger(__name__)

VENDOR = LIBRARY  # the OPP vendor name build.sh packages under (vendors/moe_mc2)
OPAPI_LIB = os.path.join("op_api", "lib", "libcust_opapi.so")  # where the generated aclnn lives
CSRC_DIR = os.path.join(os.path.dirname(__file__), "csrc")
EXTENSION_NAME = "moe_mc2_aclnn"

PATH_ACLNN = "aclnn"
PATH_PORTABLE = "portable"


# ---- decisions (pure) ---------------------------------------------------------------------------

def opp_candidates(environ: Mapping[str, str]) -> list:
    """Vendor directories that may hold the package, in CANN's lookup order.

    ASCEND_CUSTOM_OPP_PATH (colon-separated, first wins) lists vendor dirs themselves, as the
    package's set_env.bash writes them; the default install is $ASCEND_OPP_PATH/vendors/<vendor>.
    """
    out = []
    for entry in environ.get("ASCEND_CUSTOM_OPP_PATH", "").split(":"):
        entry = entry.strip()
        if entry:
            out.append(entry if os.path.basename(entry.rstrip("/")) == VENDOR else os.path.join(entry, "vendors", VENDOR))
    opp = environ.get("ASCEND_OPP_PATH", "").strip()
    if opp:
        out.append(os.path.join(opp, "vendors", VENDOR))
    return out


def find_opp_package(environ: Mapping[str, str] = os.environ,
                     exists: Callable[[str], bool] = os.path.isfile) -> Optional[str]:
    """The installed moe_mc2 vendor dir whose aclnn library exists, or None."""
    for vendor_dir in opp_candidates(environ):
        if exists(os.path.join(vendor_dir, OPAPI_LIB)):
            return vendor_dir
    return None


def choose_path(package_dir: Optional[str]) -> str:
    """aclnn when the package is installed, else the portable runtime."""
    return PATH_ACLNN if package_dir else PATH_PORTABLE


def cann_home(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    for key in ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"):
        if environ.get(key):
            return environ[key]
    opp = environ.get("ASCEND_OPP_PATH")
    return os.path.dirname(opp.rstrip("/")) if opp else None


def weight_for_aclnn(weight: torch.Tensor):
    """(tensor to pass, transpose_weight): the stored (El, M/tp, H) layout is passed as it is."""
    if rules.is_transposed_weight(weight):
        return weight.transpose(1, 2), True
    return weight.contiguous(), False


# ---- environment (needs torch_npu / HCCL) -------------------------------------------------------

def hccl_comm_name(group_name: str) -> str:
    """The HCCL communicator name of the ProcessGroup called `group_name` (what GE/aclnn take)."""
    import torch.distributed as dist
    from torch.distributed import distributed_c10d as c10d

    group = c10d._resolve_process_group(group_name)
    backend = group._get_backend(torch.device("npu"))
    return backend.get_hccl_comm_name(dist.get_rank())


_extension = None


def load_extension(package_dir: str):
    """Build (once, cached by torch) and load the aclnn bridge against torch_npu and CANN."""
    global _extension
    if _extension is None:
        import torch_npu  # noqa: PLC0415
        from torch.utils.cpp_extension import load

        npu_root = os.path.dirname(torch_npu.__file__)
        home = cann_home() or ""
        _extension = load(
            name=EXTENSION_NAME,
            sources=[os.path.join(CSRC_DIR, "aag_bmm_aclnn.cpp")],
            extra_include_paths=[os.path.join(npu_root, "include"),
                                 os.path.join(npu_root, "include", "third_party", "acl", "inc"),
                                 os.path.join(home, "include")],
            extra_ldflags=[f"-L{os.path.join(npu_root, 'lib')}", "-ltorch_npu",
                           f"-L{os.path.join(home, 'lib64')}", "-lnnopbase", "-lascendcl", "-ldl"],
            extra_cflags=["-O2"],
        )
        _extension.bind(os.path.join(package_dir, OPAPI_LIB), ACLNN_RUN)
    return _extension


_said_portable = False


def _say_portable_once():
    global _said_portable
    if not _said_portable:
        _said_portable = True
        log.warning("moe_mc2: the moe_mc2 OPP package is not installed (looked in %s); "
                    "npu_alltoall_allgather_bmm runs the portable runtime over HCCL",
                    ", ".join(opp_candidates(os.environ)) or "no ASCEND_CUSTOM_OPP_PATH/ASCEND_OPP_PATH")


def _forward_npu(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                 shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False):
    from ..contract.rules import check_forward_tensors

    package_dir = find_opp_package()
    if choose_path(package_dir) == PATH_PORTABLE:
        _say_portable_once()
        from ..runtime import forward
        return forward.run(x, weight, bias, group_ep=group_ep, ep=group_ep_worldsize, group_tp=group_tp,
                           tp=group_tp_worldsize, shard_type=shard_type, act_type=act_type,
                           need_allgather_out=need_allgather_out, need_activation_feature=need_activation_feature)

    # Same rules (NPU dtypes) on every rank before any collective, as the portable path does.
    s = check_forward_tensors(x, weight, bias, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                              shard_type, act_type, portable=False)
    want_y2, want_y3 = rules.output_flags(need_allgather_out, need_activation_feature, act_type)
    w, transposed = weight_for_aclnn(weight)
    y1 = x.new_empty(s.y1)
    y2 = x.new_empty(s.y2 if want_y2 else rules.EMPTY_OUTPUT_SHAPE)
    y3 = x.new_empty(s.y1 if want_y3 else rules.EMPTY_OUTPUT_SHAPE)
    ext = load_extension(package_dir)
    ext.run(x.contiguous(), w, None if bias is None else bias.contiguous(),
            hccl_comm_name(group_ep), hccl_comm_name(group_tp), group_ep_worldsize, group_tp_worldsize,
            shard_type, act_type, transposed, want_y2, want_y3, y1, y2, y3)
    return y1, y2, y3


_REGISTERED = False


def register() -> bool:
    """Register the PrivateUse1 kernel; only when torch_npu imports. Idempotent."""
    global _REGISTERED
    if _REGISTERED:
        return True
    import torch_npu  # noqa: F401,PLC0415 - registers the "npu" PrivateUse1 backend
    from ..ops import FORWARD_QUALNAME

    torch.library.impl(FORWARD_QUALNAME, "PrivateUse1")(_forward_npu)
    _REGISTERED = True
    return True
