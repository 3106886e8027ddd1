"""`scripts/cpp.sh package` makes opbuild emit the inner aclnn name and links the public wrapper.

The package is built from a msOpGen project whose CMake comes with the CANN toolkit; none is
here. What is tested without it:
1. op_host/op_api/msopgen_hook.py on CMake text shaped like msOpGen's 'customize' template, on
   the ways it can fail, and (with $MOE_MC2_ASC_TOOLS, a clone or git dir of hicann/asc-tools,
   where the templates live) on the real template files.
2. `scripts/cpp.sh package` itself, run on a copy of the repository with a stand-in CANN whose
   msopgen writes a mock project: the template's shape (opbuild() at configure time, a cust_opapi
   made from ${ASCEND_AUTOGEN_PATH}/aclnn_*.cpp, the template's install layout and compile flags:
   C++11, hidden visibility) with an "opbuild" that, as a child process, names what it generates
   after OPS_PROJECT_NAME as CANN's op_build does (ops-transformer's own build depends on it). The
   run shows: the hook patches the project, CMake configures and builds cust_opapi with the
   generated inner source and the wrapper, the library exports the public entry points, the inner
   ones and the wrapper's version and nothing of the rules compiled into it, the public header is
   installed next to the library, the .run is copied out; and it stops with a message when
   opbuild ignores OPS_PROJECT_NAME or the template has no opbuild call.
Unverified here: that the installed CANN's opbuild takes the prefix from OPS_PROJECT_NAME and
names its files aclnnInner_*.{cpp,h} (the configure step checks it on a real build), and the rest
of the real template.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moe_mc2.contract.names import GE_OP_TYPE
from support import ext_build
from support.cann_sources import parse_op_def
from test_aclnn_wrapper import STAND_IN, generated_inner_header, opbuild_params

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "op_host" / "op_api"))
import msopgen_hook  # noqa: E402

PUBLIC = ("aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize", "aclnnAlltoAllAllGatherBatchMatMul",
          "moe_mc2_aclnn_api_version")
INNER = ("aclnnInnerAlltoAllAllGatherBatchMatMulGetWorkspaceSize", "aclnnInnerAlltoAllAllGatherBatchMatMul")

# op_host/CMakeLists.txt in the shape of msOpGen's 'customize' template (the parts the hook and
# opapi.cmake rely on), written for these tests
TEMPLATE_OP_HOST = """
aux_source_directory(${CMAKE_CURRENT_SOURCE_DIR} ops_srcs)

opbuild(OPS_SRC ${ops_srcs}
        OUT_DIR ${ASCEND_AUTOGEN_PATH}   # (a comment with a paren) inside the call
)

file(GLOB aclnn_src ${ASCEND_AUTOGEN_PATH}/aclnn_*.cpp)
file(GLOB aclnn_inc ${ASCEND_AUTOGEN_PATH}/aclnn_*.h)
add_library(cust_opapi SHARED ${aclnn_src})
target_link_libraries(cust_opapi PRIVATE intf_pub)

install(TARGETS cust_opapi
        LIBRARY DESTINATION packages/vendors/${vendor_name}/op_api/lib)
install(FILES ${aclnn_inc}
        DESTINATION packages/vendors/${vendor_name}/op_api/include)
"""


# ---- 1. the patch --------------------------------------------------------------------------------

def test_patch_runs_opbuild_with_the_inner_name_and_includes_the_hook():
    out = msopgen_hook.patch_op_host_cmake(TEMPLATE_OP_HOST)
    lines = out.splitlines()
    call = lines.index("opbuild(OPS_SRC ${ops_srcs}")
    assert lines[call - 1] == "set(ENV{OPS_PROJECT_NAME} aclnnInner)"
    assert lines[call + 3] == "unset(ENV{OPS_PROJECT_NAME})"  # right after the call's closing paren
    assert lines[-1] == "include(${CMAKE_CURRENT_SOURCE_DIR}/op_api/opapi.cmake)"
    assert out.count("OPS_PROJECT_NAME") == 2  # set, unset; the rest of the file as it was
    assert out.replace("\n".join(lines[call - 3:call]) + "\n", "").replace("\nunset(ENV{OPS_PROJECT_NAME})", "") \
        .startswith(TEMPLATE_OP_HOST)


@pytest.mark.parametrize("text, reason", [
    (TEMPLATE_OP_HOST.replace("opbuild(", "npu_op_code_gen("), "has 0 opbuild( calls"),
    (TEMPLATE_OP_HOST + "\nopbuild(OUT_DIR x)\n", "has 2 opbuild( calls"),
    (TEMPLATE_OP_HOST.replace("cust_opapi", "cust_api"), "defines no cust_opapi target"),
    (TEMPLATE_OP_HOST.replace("packages/vendors/${vendor_name}/", ""), "installs nothing to"),
    (msopgen_hook.patch_op_host_cmake(TEMPLATE_OP_HOST), "is patched already"),
    (TEMPLATE_OP_HOST.replace("\n)\n", "\n\n", 1), "unbalanced parentheses"),
], ids=["no opbuild", "two opbuilds", "no cust_opapi", "other install layout", "patched twice", "unbalanced"])
def test_patch_refuses_what_it_does_not_know(text, reason):
    with pytest.raises(msopgen_hook.HookError, match=re.escape(reason)):
        msopgen_hook.patch_op_host_cmake(text)


def test_patch_needs_the_wrapper_in_the_project(tmp_path, capsys):
    (tmp_path / "op_host").mkdir()
    (tmp_path / "op_host" / "CMakeLists.txt").write_text(TEMPLATE_OP_HOST)
    assert msopgen_hook.main(["msopgen_hook.py", str(tmp_path)]) == 1
    assert "op_api/opapi.cmake is missing: copy op_host/op_api/ first" in capsys.readouterr().err
    assert (tmp_path / "op_host" / "CMakeLists.txt").read_text() == TEMPLATE_OP_HOST  # left as it was


def _asc_tools_text(path: str) -> str:
    source = os.environ.get("MOE_MC2_ASC_TOOLS")
    if not source:
        pytest.skip("MOE_MC2_ASC_TOOLS is not set (a clone or git dir of hicann/asc-tools)")
    if os.path.isfile(os.path.join(source, path)):
        return Path(source, path).read_text()
    return subprocess.run(["git", "--git-dir", source, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


TEMPLATES = "utils/templates/op_project_templates/ascendc"


def test_patch_on_the_real_msopgen_templates():
    """msOpGen's 'customize' template (the OPP-package project) takes the patch; its opbuild() runs
    op_build as a child of the configuring cmake, which inherits the environment the patch sets.
    The 'aclnn' template lays its package out otherwise and is refused."""
    customize = _asc_tools_text(f"{TEMPLATES}/customize/op_host/CMakeLists.txt")
    out = msopgen_hook.patch_op_host_cmake(customize)
    assert "set(ENV{OPS_PROJECT_NAME} aclnnInner)\nopbuild(" in out
    func = _asc_tools_text(f"{TEMPLATES}/customize/cmake/func.cmake")
    body = func[func.index("function(opbuild)"):]
    body = body[:body.index("endfunction()")]
    assert "execute_process(COMMAND ${ASCEND_CANN_PACKAGE_PATH}/toolkit/tools/opbuild/op_build" in body
    # it sets OPS_PROJECT_NAME only from a PROJECT_NAME argument, which the call does not pass
    assert "unset(ENV{OPS_PROJECT_NAME})" not in body and "PROJECT_NAME" not in customize
    with pytest.raises(msopgen_hook.HookError, match="installs nothing to"):
        msopgen_hook.patch_op_host_cmake(_asc_tools_text(f"{TEMPLATES}/aclnn/op_host/CMakeLists.txt"))


# ---- 2. scripts/cpp.sh package over a mock project ------------------------------------------------

TOP_CMAKE = """cmake_minimum_required(VERSION 3.16)
project(opp CXX)
set(ASCEND_AUTOGEN_PATH ${CMAKE_BINARY_DIR}/autogen)
file(MAKE_DIRECTORY ${ASCEND_AUTOGEN_PATH})
include(cmake/func.cmake)
add_library(intf_pub INTERFACE)  # the template's compile flags
target_compile_options(intf_pub INTERFACE -fPIC -fvisibility=hidden -fvisibility-inlines-hidden
                       $<$<COMPILE_LANGUAGE:CXX>:-std=c++11>)
target_compile_definitions(intf_pub INTERFACE _GLIBCXX_USE_CXX11_ABI=0)
target_include_directories(intf_pub INTERFACE @STAND_IN@)
add_subdirectory(op_host)
"""
FUNC_CMAKE = """function(opbuild)
  cmake_parse_arguments(OPBUILD "" "OUT_DIR;PROJECT_NAME;ACCESS_PREFIX;ENABLE_SOURCE" "OPS_SRC" ${ARGN})
  execute_process(COMMAND ${CMAKE_COMMAND} -DOUT=${OPBUILD_OUT_DIR} -DIGNORE_NAME=@IGNORE@
                          -DIN=${CMAKE_SOURCE_DIR}/cmake -P ${CMAKE_SOURCE_DIR}/cmake/op_build.cmake
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "mock op_build failed")
  endif()
endfunction()
"""
# the stand-in op_build: a separate process, like CANN's; the prefix from its environment
OP_BUILD = """set(PREFIX "$ENV{OPS_PROJECT_NAME}")
if(PREFIX STREQUAL "" OR IGNORE_NAME)
  set(PREFIX aclnn)
endif()
configure_file(${IN}/generated.h.in ${OUT}/${PREFIX}_allto_all_all_gather_batch_mat_mul.h @ONLY)
configure_file(${IN}/generated.cpp.in ${OUT}/${PREFIX}_allto_all_all_gather_batch_mat_mul.cpp @ONLY)
"""
BUILD_SH = """set -e
cmake --preset=default
cmake --build build -j2
cmake --install build --prefix build_out/install
touch build_out/custom_opp_mock_x86_64.run
"""
PRESETS = {"version": 1, "configurePresets": [
    {"name": "default", "generator": "Unix Makefiles", "binaryDir": "${sourceDir}/build",
     "cacheVariables": {"CMAKE_BUILD_TYPE": "Release"}}]}


def write_mock_template(where: Path, opdef, *, ignore_name=False, op_host=TEMPLATE_OP_HOST, build_sh=BUILD_SH):
    (where / "cmake").mkdir(parents=True)
    (where / "op_host").mkdir()
    (where / "op_kernel").mkdir()
    (where / "CMakeLists.txt").write_text(TOP_CMAKE.replace("@STAND_IN@", str(STAND_IN)))
    (where / "CMakePresets.json").write_text(json.dumps(PRESETS))
    (where / "build.sh").write_text(build_sh)
    (where / "cmake" / "func.cmake").write_text(FUNC_CMAKE.replace("@IGNORE@", "ON" if ignore_name else "OFF"))
    (where / "cmake" / "op_build.cmake").write_text(OP_BUILD)
    params = opbuild_params(opdef)
    header = generated_inner_header(params).replace("aclnnInner", "@PREFIX@")
    (where / "cmake" / "generated.h.in").write_text(header)
    args = ", ".join(f"{t} {n}" for t, n in params)
    (where / "cmake" / "generated.cpp.in").write_text(
        '#include "@PREFIX@_allto_all_all_gather_batch_mat_mul.h"\nextern "C" {\n'
        f"aclnnStatus @PREFIX@AlltoAllAllGatherBatchMatMulGetWorkspaceSize({args}) {{ return 0; }}\n"
        "aclnnStatus @PREFIX@AlltoAllAllGatherBatchMatMul(void *, uint64_t, aclOpExecutor *, aclrtStream)"
        " { return 0; }\n}\n")
    (where / "op_host" / "CMakeLists.txt").write_text(op_host)


MSOPGEN = """#!/usr/bin/env python3
# stand-in for CANN's msopgen: `msopgen gen -i JSON -c CORE -lan cpp -out DIR` copies the mock template
import shutil, sys
shutil.copytree("@TEMPLATE@", sys.argv[sys.argv.index("-out") + 1])
"""


def run_cpp_package(tmp_path: Path, opdef, **template) -> tuple:
    """scripts/cpp.sh package on a copy of the repository, a stand-in CANN and the mock template."""
    repo = tmp_path / "repo"
    for part in ("scripts", "op_host", "op_proto", "op_kernel"):
        shutil.copytree(ROOT / part, repo / part, symlinks=False)
    write_mock_template(tmp_path / "template", opdef, **template)
    cann = tmp_path / "cann"
    msopgen = cann / "python" / "site-packages" / "bin" / "msopgen"
    msopgen.parent.mkdir(parents=True)
    msopgen.write_text(MSOPGEN.replace("@TEMPLATE@", str(tmp_path / "template")))
    msopgen.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "MOE_MC2_"))}
    # the stand-in msopgen first on PATH (cpp.sh asks `command -v msopgen` before the CANN home)
    env.update(ASCEND_HOME_PATH=str(cann), PATH=f"{msopgen.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    r = subprocess.run(["bash", str(repo / "scripts" / "cpp.sh"), "package"], capture_output=True, text=True,
                       env=env, timeout=600)
    return r, repo / "build_out" / "msopgen_project"


@pytest.fixture(scope="module")
def opdef():
    return parse_op_def((ROOT / "op_host" / "aag_bmm_def.cpp").read_text(), GE_OP_TYPE)


def _exports(library: Path) -> set:
    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, opdef):
    """The result of a package run, remembered under build/ while the inputs stay the same."""
    inputs = [*(ROOT / "op_host" / "op_api").glob("*"), ROOT / "scripts" / "cpp.sh",
              ROOT / "op_host" / "core" / "aag_bmm_rules.cpp", ROOT / "op_host" / "core" / "aag_bmm_rules.h",
              *STAND_IN.rglob("*.h"), Path(__file__)]
    stamp = ext_build.BUILD / "hook" / f"{ext_build._digest(['package'], inputs)}.json"
    if stamp.is_file():
        return json.loads(stamp.read_text())
    r, proj = run_cpp_package(tmp_path_factory.mktemp("package"), opdef)
    got = {"rc": r.returncode, "out": (r.stdout + r.stderr)[-8000:]}
    if r.returncode == 0:
        inst = proj / "build_out" / "install" / "packages" / "vendors" / "moe_mc2" / "op_api"
        got["exports"] = sorted(_exports(inst / "lib" / "libcust_opapi.so"))
        got["installed"] = sorted(str(p.relative_to(inst)) for p in inst.rglob("*") if p.is_file())
        got["op_host_cmake"] = (proj / "op_host" / "CMakeLists.txt").read_text()
        got["run_copied"] = sorted(p.name for p in (proj.parent).glob("custom_opp_*.run"))
        got["wrapper_flags"] = [line for f in (proj / "build").rglob("flags.make") for line in f.read_text().splitlines()
                                if "MOE_MC2_ACLNN_INNER_HEADER" in line]
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(got))
    return got


def test_package_builds_the_public_api_over_the_inner_one(packaged):
    assert packaged["rc"] == 0, packaged["out"]
    assert "msopgen_hook:" in packaged["out"] and "moe_mc2: cust_opapi gets" in packaged["out"]
    exports = set(packaged["exports"])
    assert set(PUBLIC) | set(INNER) <= exports
    # the rules compiled into the wrapper stay inside (hidden, under their own namespace)
    assert not [s for s in exports if "moe_mc2" in s and s != "moe_mc2_aclnn_api_version"]
    assert packaged["installed"] == ["include/aclnn_alltoall_allgather_bmm.h", "lib/libcust_opapi.so"]
    assert packaged["run_copied"] == ["custom_opp_mock_x86_64.run"]
    assert "set(ENV{OPS_PROJECT_NAME} aclnnInner)" in packaged["op_host_cmake"]
    # the wrapper was compiled against the generated inner header (its static_asserts ran)
    assert any("aclnn_alltoall_allgather_bmm.cpp" in line and
               "aclnnInner_allto_all_all_gather_batch_mat_mul.h" in line for line in packaged["wrapper_flags"])


def test_package_stops_when_opbuild_ignores_the_inner_name(tmp_path, opdef):
    r, _ = run_cpp_package(tmp_path, opdef, ignore_name=True)
    out = " ".join((r.stdout + r.stderr).split())  # CMake wraps its messages
    assert r.returncode != 0
    assert "opbuild, run with OPS_PROJECT_NAME=aclnnInner, was expected to generate exactly one" in out
    assert "aclnn_allto_all_all_gather_batch_mat_mul.cpp" in out  # what it found instead


def test_package_stops_when_the_template_has_no_opbuild_call(tmp_path, opdef):
    r, proj = run_cpp_package(tmp_path, opdef, op_host=TEMPLATE_OP_HOST.replace("opbuild(", "npu_op_code_gen("))
    assert r.returncode == 1
    assert "scripts/cpp.sh package: " in r.stderr and "has 0 opbuild( calls" in r.stderr
    assert not (proj / "build").exists()  # stopped before the project's build


def test_package_stops_when_the_library_lacks_the_public_api(tmp_path, opdef):
    """The check after the build: a libcust_opapi.so without the wrapper's symbols fails the package."""
    stub = ("echo 'extern \"C\" int aclnnInnerAlltoAllAllGatherBatchMatMul() { return 0; }' | "
            "g++ -shared -fPIC -x c++ - -o build_out/install/packages/vendors/moe_mc2/op_api/lib/libcust_opapi.so\n")
    r, _ = run_cpp_package(tmp_path, opdef, build_sh=BUILD_SH + stub)
    assert r.returncode == 1
    assert ("does not export: aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize aclnnAlltoAllAllGatherBatchMatMul "
            "moe_mc2_aclnn_api_version (the public aclnn wrapper") in r.stderr
