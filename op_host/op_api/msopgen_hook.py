#!/usr/bin/env python3
"""Make a msOpGen-generated project build CANN's public aclnn API for AlltoAllAllGatherBatchMatMul.

    python3 op_host/op_api/msopgen_hook.py <msopgen project dir>

scripts/cpp.sh package runs this after it has copied the sources (op_host/op_api included) into
the project and before the project's build.sh. In the project's op_host/CMakeLists.txt it
  1. runs the one opbuild(...) call with OPS_PROJECT_NAME=aclnnInner in the environment (set just
     before the call, unset just after; opbuild runs at configure time, in that process), so that
     the API opbuild generates from the OpDef is aclnnInnerAlltoAllAllGatherBatchMatMul, as in
     CANN's own build of the op (ops-transformer, cmake/custom_build.cmake);
  2. includes op_host/op_api/opapi.cmake at the end, which puts the generated inner source and the
     public wrapper into cust_opapi and fails the configuration if opbuild did not use the name.

The project's CMake comes from the installed CANN's msOpGen templates, which this repository
cannot see. What the patch relies on is checked here, and anything else stops the package build
with a message (exit status 1): one opbuild( call, a cust_opapi target, the 'customize' template's
install layout (packages/vendors/<vendor>/op_api/{lib,include}), not patched before.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

MARK = "# moe_mc2 (scripts/cpp.sh package):"
INNER_PREFIX = "aclnnInner"
# where the 'customize' template installs cust_opapi and the generated aclnn headers (opapi.cmake
# installs the public header to the first)
INSTALL_DESTINATIONS = ("DESTINATION packages/vendors/${vendor_name}/op_api/include",
                        "DESTINATION packages/vendors/${vendor_name}/op_api/lib")


class HookError(RuntimeError):
    """The project does not have the shape the patch needs; the message says what is missing."""


def _calls(text: str, name: str) -> list:
    """(start, end) of every `name(...)` command in CMake text, parentheses balanced, comments skipped."""
    out = []
    for m in re.finditer(rf"^[ \t]*{name}[ \t]*\(", text, re.M):
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            if c == "#":  # a comment runs to the end of the line
                i = text.find("\n", i)
                if i < 0:
                    break
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    out.append((m.start(), i + 1))
                    break
            i += 1
        else:
            raise HookError(f"unbalanced parentheses in the {name}( call at offset {m.start()}")
    return out


def patch_op_host_cmake(text: str, where: str = "op_host/CMakeLists.txt") -> str:
    """The patched text of the project's op_host/CMakeLists.txt (see the module docstring)."""
    if MARK in text:
        raise HookError(f"{where} is patched already (it holds '{MARK}'); start from a fresh msOpGen project")
    calls = _calls(text, "opbuild")
    if len(calls) != 1:
        raise HookError(f"{where} has {len(calls)} opbuild( calls, the patch expects exactly one: the CANN "
                        "toolkit's msOpGen template differs from the ones this hook was written for, so the "
                        "package cannot be made to generate the inner aclnn API")
    if not re.search(r"\bcust_opapi\b", text):
        raise HookError(f"{where} defines no cust_opapi target: there is no op-API library for the public "
                        "aclnn wrapper to go into")
    for dest in INSTALL_DESTINATIONS:
        if dest not in text:
            raise HookError(f"{where} installs nothing to '{dest}': opapi.cmake installs the public header "
                            "where the msOpGen 'customize' template installs the generated ones, next to "
                            "libcust_opapi.so, and this project lays its package out otherwise")
    start, end = calls[0]
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    before = (f"{indent}{MARK} opbuild generates the OpDef's API under the inner name\n"
              f"{indent}# ({INNER_PREFIX}AlltoAllAllGatherBatchMatMul); op_api/ holds the public one\n"
              f"{indent}set(ENV{{OPS_PROJECT_NAME}} {INNER_PREFIX})\n")
    after = f"\n{indent}unset(ENV{{OPS_PROJECT_NAME}})"
    patched = text[:line_start] + before + text[line_start:end] + after + text[end:]
    if not patched.endswith("\n"):
        patched += "\n"
    patched += (f"\n{MARK} CANN's public aclnnAlltoAllAllGatherBatchMatMul over the generated inner API\n"
                "include(${CMAKE_CURRENT_SOURCE_DIR}/op_api/opapi.cmake)\n")
    return patched


def patch(project: Path) -> None:
    project = Path(project)
    cmake = project / "op_host" / "CMakeLists.txt"
    if not cmake.is_file():
        raise HookError(f"{cmake} does not exist: not a msOpGen project")
    for need in ("opapi.cmake", "aclnn_alltoall_allgather_bmm.cpp", "aclnn_alltoall_allgather_bmm.h",
                 "aclnn_alltoall_allgather_bmm_inner.h"):
        if not (project / "op_host" / "op_api" / need).is_file():
            raise HookError(f"{project / 'op_host' / 'op_api' / need} is missing: copy op_host/op_api/ first")
    cmake.write_text(patch_op_host_cmake(cmake.read_text(), str(cmake)))


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 64
    try:
        patch(Path(argv[1]))
    except HookError as exc:
        print(f"scripts/cpp.sh package: {exc}", file=sys.stderr)
        return 1
    print(f"msopgen_hook: {argv[1]}/op_host/CMakeLists.txt runs opbuild with OPS_PROJECT_NAME={INNER_PREFIX} "
          "and builds the public aclnn wrapper into cust_opapi")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
