"""Eager NPU kernels (PrivateUse1) of both ops: a fused CANN kernel through aclnn where one exists.

Each op is served by the first of these that the machine has, decided once (at the first NPU
call) and logged once (`routes()` tells the same at any time):

  npu_alltoall_allgather_bmm (forward)
    1. package  - this project's OPP package (vendor `moe_mc2`): its aclnnAlltoAllAllGatherBatchMatMul
                  from `<vendor>/op_api/lib/libcust_opapi.so` (the public wrapper, op_host/op_api,
                  over the API opbuild generated from the OpDef), if that library also exports
                  moe_mc2_aclnn_api_version (a package built before the wrapper does not);
    2. builtin  - CANN's own aclnnAlltoAllAllGatherBatchMatMul, if an op-API library of the
                  installed CANN exports it (libopapi.so, libopapi_*.so: probed for the symbol);
    3. portable - the overlapped torch.distributed pipeline over HCCL (moe_mc2.runtime).
  npu_bmm_reducescatter_alltoall (adjoint; used by the backward)
    1. builtin  - CANN's aclnnBatchMatMulReduceScatterAlltoAll (the package ships no adjoint);
    2. portable.

A portable route is announced by one warning naming what is missing, and so is an installed
package that is not used. `MOE_MC2_NPU_ROUTE` narrows the choice: `builtin` skips the package,
`portable` skips every fused kernel.

Both forward routes take the same call, CANN's public argument list (declared once, in the
package's header csrc/aclnn_alltoall_allgather_bmm.h); only the library differs. The aclnn calls
go through a small C++ extension (csrc/: aclnn_decls.h, aclnn_core.h, aag_bmm_aclnn.cpp) that
torch.utils.cpp_extension builds on first use. Group arguments reach
aclnn as HCCL communicator names (`runtime.groups.comm_name`). Everything here except the
build and the launch is plain Python over an environment mapping, tested without an NPU.
"""
from __future__ import annotations

import ctypes
import dataclasses
import glob as _glob
import importlib.util
import logging
import os
from typing import Callable, Mapping, Optional, Sequence

import torch

from ..contract import rules
from ..runtime import agreement
from ..contract.names import ACLNN_RUN, ADJOINT_ACLNN_RUN, ADJOINT_OP_NAME, LIBRARY, OP_NAME

log = logging.getLogger(__name__)

VENDOR = LIBRARY  # the OPP vendor name build.sh packages under (vendors/moe_mc2)
OPAPI_LIB = os.path.join("op_api", "lib", "libcust_opapi.so")  # where the generated aclnn lives
CSRC_DIR = os.path.join(os.path.dirname(__file__), "csrc")
BRIDGE_SOURCE = os.path.join(CSRC_DIR, "aag_bmm_aclnn.cpp")
EXTENSION_NAME = "moe_mc2_aclnn"
ROUTE_ENV = "MOE_MC2_NPU_ROUTE"

FORWARD, ADJOINT = "forward", "adjoint"
OP_OF = {FORWARD: OP_NAME, ADJOINT: ADJOINT_OP_NAME}
ENTRY = {FORWARD: ACLNN_RUN, ADJOINT: ADJOINT_ACLNN_RUN}  # aclnn<X>, aclnn<X>GetWorkspaceSize

PACKAGE, BUILTIN, PORTABLE = "package", "builtin", "portable"
# What the package's op-API library exports besides the entry points: its public-API version
# (op_host/op_api/aclnn_alltoall_allgather_bmm.h). A package without it predates the public
# wrapper: its aclnnAlltoAllAllGatherBatchMatMul takes the OpDef's argument list.
PACKAGE_API_MARKER = "moe_mc2_aclnn_api_version"

# OpDef attributes that the public aclnn entry points (CANN's built-ins, the package's wrapper) do
# not take: they derive them from the tensors (tests/test_npu_bridge_compile.py and
# tests/test_aclnn_wrapper.py hold the declarations to this).
DERIVED_ATTRS = {
    "transpose_weight": "the weight's strides (a transposed (E/ep, M/tp, H) view)",
    "output_y2_flag": "y2 passed as a tensor (not null)",
    "output_y3_flag": "y3 passed as a tensor (not null)",
}

# What CANN's built-in kernels document beyond this project's contract (aclnn headers of
# ops-transformer, mc2/): E <= 512 and E/ep <= 32. Larger calls stay on the portable pipeline.
BUILTIN_E_MAX = 512
BUILTIN_LOCAL_EXPERTS_MAX = 32


# ---- where the OPP package and CANN's op-API libraries are (pure) -----------------------------

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


def cann_home(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    for key in ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"):
        if environ.get(key):
            return environ[key]
    opp = environ.get("ASCEND_OPP_PATH")
    return os.path.dirname(opp.rstrip("/")) if opp else None


def builtin_candidates(environ: Mapping[str, str] = os.environ,
                       exists: Callable[[str], bool] = os.path.isfile,
                       glob: Callable[[str], list] = _glob.glob) -> list:
    """CANN op-API libraries that may export the built-in aclnn ops, in the order torch_npu
    looks: <home>/lib64/libopapi.so, then <home>/lib64/libopapi_*.so (CANN's per-package op
    libraries), then plain `libopapi.so` for the dynamic linker's own search."""
    out = []
    home = cann_home(environ)
    if home:
        lib64 = os.path.join(home, "lib64")
        main = os.path.join(lib64, "libopapi.so")
        if exists(main):
            out.append(main)
        out += sorted(p for p in glob(os.path.join(lib64, "libopapi_*.so")) if p not in out)
    out.append("libopapi.so")
    return out


def probe_symbols(library: str, symbols: Sequence[str]) -> Optional[str]:
    """None when `library` loads and exports every symbol; otherwise why not."""
    try:
        lib = ctypes.CDLL(library, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
    except OSError as exc:
        return f"{library}: cannot be loaded ({exc})"
    missing = [s for s in symbols if not hasattr(lib, s)]
    return f"{library}: does not export {', '.join(missing)}" if missing else None


def entry_symbols(entry: str) -> tuple:
    return (entry + "GetWorkspaceSize", entry)


# ---- which kernel serves each op (pure) --------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Route:
    op: str  # FORWARD | ADJOINT
    kind: str  # PACKAGE | BUILTIN | PORTABLE
    library: Optional[str] = None  # the op-API library the entry points come from
    missing: str = ""  # PORTABLE: what a fused kernel lacked
    skipped: str = ""  # an installed moe_mc2 OPP package that could not serve the op, and why

    @property
    def entry(self) -> Optional[str]:
        return None if self.kind == PORTABLE else ENTRY[self.op]

    def describe(self) -> str:
        name = OP_OF[self.op]
        if self.kind == PACKAGE:
            return f"{name}: fused kernel of the moe_mc2 OPP package ({self.entry} from {self.library})"
        if self.kind == BUILTIN:
            return f"{name}: CANN's built-in fused kernel ({self.entry} from {self.library})"
        return f"{name}: portable pipeline over HCCL ({self.missing})"


def resolve_routes(environ: Mapping[str, str], *, torch_npu_present: bool,
                   exists: Callable[[str], bool] = os.path.isfile,
                   glob: Callable[[str], list] = _glob.glob,
                   probe: Callable[[str, Sequence[str]], Optional[str]] = probe_symbols) -> dict:
    """{FORWARD: Route, ADJOINT: Route} for this environment (see the module docstring)."""
    mode = (environ.get(ROUTE_ENV) or "auto").strip().lower()
    if mode not in ("auto", BUILTIN, PORTABLE):
        raise ValueError(f"{ROUTE_ENV}={environ.get(ROUTE_ENV)!r}: expected auto, builtin or portable")
    out = {}
    for op in (FORWARD, ADJOINT):
        symbols = entry_symbols(ENTRY[op])
        if not torch_npu_present:
            out[op] = Route(op, PORTABLE, missing="torch_npu is not importable")
            continue
        if mode == PORTABLE:
            out[op] = Route(op, PORTABLE, missing=f"{ROUTE_ENV}=portable")
            continue
        tried = []
        route = None
        skipped = ""
        if op == FORWARD and mode == "auto":
            vendor = find_opp_package(environ, exists)
            if vendor is None:
                looked = ", ".join(opp_candidates(environ)) or "ASCEND_CUSTOM_OPP_PATH and ASCEND_OPP_PATH unset"
                tried.append(f"the moe_mc2 OPP package is not installed (looked in {looked})")
            else:
                library = os.path.join(vendor, OPAPI_LIB)
                why = probe(library, symbols + (PACKAGE_API_MARKER,))
                if why is not None and probe(library, symbols) is None:
                    why = (f"{library}: exports {symbols[1]} but not {PACKAGE_API_MARKER}: a moe_mc2 package "
                           f"built before its public aclnn wrapper (its {symbols[1]} takes another argument "
                           "list); rebuild and reinstall it (./build.sh package)")
                if why is None:
                    route = Route(op, PACKAGE, library)
                else:
                    tried.append(why)
                    skipped = why
        if route is None:
            for library in builtin_candidates(environ, exists, glob):
                why = probe(library, symbols)
                if why is None:
                    route = Route(op, BUILTIN, library, skipped=skipped)
                    break
                tried.append(why)
        if route is None:
            route = Route(op, PORTABLE, missing=f"no library provides {symbols[1]}[GetWorkspaceSize]: "
                                                + "; ".join(tried), skipped=skipped)
        out[op] = route
    return out


_ROUTES: Optional[dict] = None


def _torch_npu_present() -> bool:
    try:
        return importlib.util.find_spec("torch_npu") is not None
    except (ImportError, ValueError):
        return False


def routes() -> dict:
    """The routes of this process: resolved at the first call, logged once, then fixed."""
    global _ROUTES
    if _ROUTES is None:
        found = resolve_routes(os.environ, torch_npu_present=_torch_npu_present())
        log.info("moe_mc2 NPU kernels: %s", "; ".join(r.describe() for r in found.values()))
        for r in found.values():
            if r.skipped and r.kind != PORTABLE:  # (a portable route's warning below says it already)
                log.warning("moe_mc2: %s: the installed moe_mc2 OPP package is not used: %s", OP_OF[r.op],
                            r.skipped)
        portable = [r for r in found.values() if r.kind == PORTABLE]
        if portable:
            log.warning("moe_mc2: %s", " | ".join(
                f"{OP_OF[r.op]} runs the portable pipeline over HCCL, not a fused CANN kernel: {r.missing}"
                for r in portable))
        _ROUTES = found
    return _ROUTES


def describe_routes() -> str:
    return "\n".join(r.describe() for r in routes().values())


def builtin_rejects(E: int, local_experts: int) -> Optional[str]:
    """Why CANN's built-in kernels would refuse these sizes, or None."""
    if E > BUILTIN_E_MAX:
        return f"E = {E} > {BUILTIN_E_MAX}"
    if local_experts > BUILTIN_LOCAL_EXPERTS_MAX:
        return f"E/ep = {local_experts} > {BUILTIN_LOCAL_EXPERTS_MAX}"
    return None


def weight_for_aclnn(weight: torch.Tensor):
    """(logical view to pass, transpose_weight).

    A 3-D weight that is the transpose of a contiguous tensor (e.g. `w.transpose(1, 2)` of the
    stored (E/ep, M/tp, H) layout) is passed as it is, with the exact strides CANN recognises
    as transposed (size-1 dims may carry any stride in torch); anything else is made contiguous.
    Both forward routes get this view; the callee derives transpose_weight from its strides.
    """
    if rules.is_transposed_weight(weight):
        b, r, c = weight.shape
        return weight.as_strided((b, r, c), (r * c, 1, r)), True
    return weight.contiguous(), False


# ---- the C++ extension ------------------------------------------------------------------------

def extension_spec(npu_root: str, cann_include_dirs: Sequence[str] = ()) -> dict:
    """The arguments `load_extension` gives torch.utils.cpp_extension.load.

    `npu_root` is torch_npu's package directory (its include/ holds torch_npu's and ACL's
    headers); `cann_include_dirs` add CANN's (aclnn/acl_meta.h), after torch_npu's own.
    tests/test_npu_bridge_compile.py compiles the bridge with exactly these.
    """
    inc = os.path.join(npu_root, "include")
    return dict(
        name=EXTENSION_NAME,
        sources=[BRIDGE_SOURCE],
        extra_include_paths=[inc, os.path.join(inc, "third_party", "hccl", "inc"),
                             os.path.join(inc, "third_party", "acl", "inc"), *cann_include_dirs],
        extra_cflags=["-O2"],
        extra_ldflags=[f"-L{os.path.join(npu_root, 'lib')}", "-ltorch_npu", "-ldl"],
    )


_extension = None
_bound: dict = {}


def load_extension():
    """Build (once; torch caches it under ~/.cache/torch_extensions) and import the bridge."""
    global _extension
    if _extension is None:
        import torch_npu  # noqa: PLC0415
        from torch.utils.cpp_extension import load

        home = cann_home()
        cann_includes = [os.path.join(home, "include")] if home and os.path.isdir(os.path.join(home, "include")) else []
        _extension = load(**extension_spec(os.path.dirname(torch_npu.__file__), cann_includes))
    return _extension


def extension_for(route: Route):
    """The bridge with `route`'s entry points bound (dlopen + dlsym, once per op)."""
    ext = load_extension()
    key = (route.library, route.entry)
    if _bound.get(route.op) != key:
        ext.bind(route.op, route.library, route.entry)
        _bound[route.op] = key
    return ext


# ---- the kernels ------------------------------------------------------------------------------

_said: set = set()


def _say_once(key: str, message: str, *args) -> None:
    if key not in _said:
        _said.add(key)
        log.warning(message, *args)


def _forward_npu(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                 shard_type=0, act_type=0, need_allgather_out=False, need_activation_feature=False):
    route = routes()[FORWARD]
    if route.kind != PORTABLE:
        def check(resolve):  # the NPU rules (no float32, no one-rank group)
            s = rules.check_forward_tensors(x, weight, bias, group_ep, group_ep_worldsize, group_tp,
                                            group_tp_worldsize, shard_type, act_type, portable=False,
                                            resolve=resolve)
            rules.check_flag(OP_NAME, "need_allgather_out", need_allgather_out)
            rules.check_flag(OP_NAME, "need_activation_feature", need_activation_feature)
            return s

        # every rank checks its call, then the ranks agree on it (and on the kernel each found) before
        # the kernel's collectives, as the portable runtime does (docs/contract.md §6)
        s, pg_ep, pg_tp, agree = agreement.check_on_this_rank(OP_NAME, group_ep, group_ep_worldsize, group_tp,
                                                              group_tp_worldsize, check)
        why = builtin_rejects(s.E, s.El) if route.kind == BUILTIN else None
        if why is None:
            if agree:
                agreement.confirm(OP_NAME, agreement.signature(
                    OP_NAME, ep=group_ep_worldsize, tp=group_tp_worldsize, shard_type=shard_type,
                    act_type=act_type, y2=need_allgather_out, y3=need_activation_feature, x=x,
                    weight_shape=(s.El, s.H, s.N), bias=bias, kernel=route.kind), pg_ep, pg_tp)
            return _forward_aclnn(route, s, x, weight, bias, group_ep, group_ep_worldsize, group_tp,
                                  group_tp_worldsize, shard_type, act_type, need_allgather_out,
                                  need_activation_feature)
        _say_once("forward-limits", "moe_mc2: %s with %s runs the portable pipeline (CANN's built-in kernel "
                  "documents E <= %d, E/ep <= %d)", OP_NAME, why, BUILTIN_E_MAX, BUILTIN_LOCAL_EXPERTS_MAX)
    from ..runtime import forward
    return forward.run(x, weight, bias, group_ep=group_ep, ep=group_ep_worldsize, group_tp=group_tp,
                       tp=group_tp_worldsize, shard_type=shard_type, act_type=act_type,
                       need_allgather_out=need_allgather_out, need_activation_feature=need_activation_feature)


def _forward_aclnn(route, s, x, weight, bias, group_ep, ep, group_tp, tp, shard_type, act_type,
                   need_allgather_out, need_activation_feature):
    from ..runtime.groups import comm_name

    want_y2, want_y3 = rules.output_flags(need_allgather_out, need_activation_feature, act_type)
    w, transposed = weight_for_aclnn(weight)
    y1 = x.new_empty(s.y1)
    y2 = x.new_empty(s.y2) if want_y2 else None  # not produced: null, as CANN's callers pass it
    y3 = x.new_empty(s.y1) if want_y3 else None
    extension_for(route).forward(
        x.contiguous(), w, None if bias is None else bias.contiguous(), comm_name(group_ep), comm_name(group_tp),
        ep, tp, shard_type, act_type, transposed, y1, y2, y3)
    empty = rules.EMPTY_OUTPUT_SHAPE
    return y1, x.new_empty(empty) if y2 is None else y2, x.new_empty(empty) if y3 is None else y3


def _adjoint_npu(x, weight, *, bias=None, group_ep, group_ep_worldsize, group_tp, group_tp_worldsize,
                 shard_type=0):
    from ..contract.adjoint_rules import check_adjoint_tensors

    route = routes()[ADJOINT]
    if route.kind != PORTABLE:
        def check(resolve):
            return check_adjoint_tensors(x, weight, bias, group_ep, group_ep_worldsize, group_tp,
                                         group_tp_worldsize, shard_type, portable=False, resolve=resolve)

        s, pg_ep, pg_tp, agree = agreement.check_on_this_rank(ADJOINT_OP_NAME, group_ep, group_ep_worldsize,
                                                              group_tp, group_tp_worldsize, check)
        why = builtin_rejects(s.E, s.El)
        if why is None:
            if agree:
                agreement.confirm(ADJOINT_OP_NAME, agreement.signature(
                    ADJOINT_OP_NAME, ep=group_ep_worldsize, tp=group_tp_worldsize, shard_type=shard_type, x=x,
                    weight_shape=(s.El, s.N, s.H), bias=bias, kernel=route.kind), pg_ep, pg_tp)
            return _adjoint_aclnn(route, s, x, weight, bias, group_ep, group_ep_worldsize, group_tp,
                                  group_tp_worldsize, shard_type)
        _say_once("adjoint-limits", "moe_mc2: %s with %s runs the portable pipeline (CANN's built-in kernel "
                  "documents E <= %d, E/ep <= %d)", ADJOINT_OP_NAME, why, BUILTIN_E_MAX, BUILTIN_LOCAL_EXPERTS_MAX)
    from ..runtime import adjoint
    return adjoint.run(x, weight, bias, group_ep=group_ep, ep=group_ep_worldsize, group_tp=group_tp,
                       tp=group_tp_worldsize, shard_type=shard_type)


def _adjoint_aclnn(route, s, x, weight, bias, group_ep, ep, group_tp, tp, shard_type):
    from ..runtime.groups import comm_name

    w, transposed = weight_for_aclnn(weight)
    out = x.new_empty(s.out)
    extension_for(route).adjoint(
        x.contiguous(), w, None if bias is None else bias.contiguous(), comm_name(group_ep), comm_name(group_tp),
        ep, tp, shard_type, transposed, out)
    return out


_REGISTERED = False


def register() -> bool:
    """Register the PrivateUse1 kernels of both ops; only when torch_npu imports. Idempotent.
    Nothing is probed or built here: that happens at the first NPU call."""
    global _REGISTERED
    if _REGISTERED:
        return True
    import torch_npu  # noqa: F401,PLC0415 - registers the "npu" PrivateUse1 backend
    from ..adjoint_ops import ADJOINT_QUALNAME
    from ..ops import FORWARD_QUALNAME

    torch.library.impl(FORWARD_QUALNAME, "PrivateUse1")(_forward_npu)
    torch.library.impl(ADJOINT_QUALNAME, "PrivateUse1")(_adjoint_npu)
    _REGISTERED = True
    return True
