#!/usr/bin/env bash
# C++ half of moe_mc2: the portable core, the CPU model of the kernel, the CANN checks and the OPP package.
#
#   scripts/cpp.sh test        configure + build into build/ (portable core, the CPU model of the kernel
#                              kernel_sim/) and run ctest (no CANN needed)
#   scripts/cpp.sh cann-check  compile op_kernel/, op_host/, op_proto/ against the open-source CANN headers
#                              with the kit's check.sh when $CANN_INCLUDE names a header tree; says
#                              plainly that it skipped (exit 0) when it cannot run
#   scripts/cpp.sh package     build the custom OPP package (vendor moe_mc2) into build_out/
#                              exit 2 with a clear message when CANN is not installed
#
# Needs for `test`: cmake >= 3.16, a C++17 compiler and the Debian packages
#   libgtest-dev googletest nlohmann-json3-dev
# cann-check: CANN_INCLUDE (the header tree, assembled outside every repository as
#   docs/cann_headers.md describes; never committed), CANN_CHECK (check.sh; default: shared/cann/check.sh
#   next to this checkout or next to the main checkout of its git repository), MOE_MC2_JOBS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${MOE_MC2_JOBS:-2}"
VENDOR="moe_mc2"
OP_TYPE="AlltoAllAllGatherBatchMatMul"
OP_FILE="allto_all_all_gather_batch_mat_mul"   # msOpGen / opbuild snake-case of OP_TYPE

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

cmd_test() {
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DMOE_MC2_BUILD_TESTS=ON -DMOE_MC2_BUILD_KERNEL_SIM=ON
    cmake --build "$ROOT/build" -j"$JOBS"
    ctest --test-dir "$ROOT/build" --output-on-failure -j"$JOBS"
    "$ROOT/build/tests/cpp/plan_report"
}

find_cann_check() {
    if [[ -n "${CANN_CHECK:-}" ]]; then
        echo "$CANN_CHECK"
        return 0
    fi
    local common cand
    common="$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
    for cand in "$ROOT/../shared/cann/check.sh" ${common:+"$(dirname "$common")/../shared/cann/check.sh"}; do
        if [[ -f "$cand" ]]; then
            (cd "$(dirname "$cand")" && echo "$(pwd -P)/check.sh")
            return 0
        fi
    done
    return 1
}

# op_kernel headers that must compile on their own (first include of a unit): checked with check.sh
# itself on a throw-away project in $TMPDIR holding a one-line entry per header
standalone_headers_check() {
    local check="$1" tmp status=0 h
    for h in aag_bmm_tiling_data.h aag_bmm_offsets.h; do
        tmp="$(mktemp -d "${TMPDIR:-/tmp}/moe_mc2_alone.XXXXXX")"
        mkdir -p "$tmp/op_kernel"
        cp "$ROOT"/op_kernel/*.h "$tmp/op_kernel/"
        printf '#include "%s"  // first include: the header must be self-contained\n#include "kernel_operator.h"\nextern "C" __global__ __aicore__ void alone(GM_ADDR p) { (void)p; }\n' \
            "$h" > "$tmp/op_kernel/alone.cpp"
        if bash "$check" -j"$JOBS" "$tmp" > "$tmp.log" 2>&1; then
            echo "OK    standalone op_kernel/$h (device, CPU-debug mode)"
        else
            echo "FAIL  standalone op_kernel/$h:"; sed -n '/^FAIL/p' "$tmp.log" | head -5
            status=1
        fi
        rm -rf "$tmp" "$tmp.log"
    done
    # host side: the tiling struct is included by op_host/aag_bmm_tiling.cpp
    if g++ -std=c++17 -fsyntax-only -x c++ -I"$CANN_INCLUDE/generated" -I"$ROOT/op_kernel" \
            "$ROOT/op_kernel/aag_bmm_tiling_data.h" 2> "${TMPDIR:-/tmp}/moe_mc2_alone_host.log"; then
        echo "OK    standalone op_kernel/aag_bmm_tiling_data.h (host)"
    else
        echo "FAIL  standalone op_kernel/aag_bmm_tiling_data.h (host):"; head -5 "${TMPDIR:-/tmp}/moe_mc2_alone_host.log"
        status=1
    fi
    return $status
}

cmd_cann_check() {
    if [[ -z "${CANN_INCLUDE:-}" ]]; then
        echo "CANN header check: SKIPPED - \$CANN_INCLUDE is not set. The check compiles op_kernel/ (every tiling"
        echo "  key, AIC and AIV), op_host/ and op_proto/ against the open-source CANN headers; assemble the header"
        echo "  tree outside the repository as docs/cann_headers.md describes and set CANN_INCLUDE=DIR."
        return 0
    fi
    if [[ ! -d "$CANN_INCLUDE" ]]; then
        echo "CANN header check: FAILED - CANN_INCLUDE=$CANN_INCLUDE is not a directory" >&2
        return 1
    fi
    local check
    if ! check="$(find_cann_check)" || [[ ! -f "$check" ]]; then
        echo "CANN header check: SKIPPED - check.sh not found (looked for \$CANN_CHECK, ../shared/cann/check.sh"
        echo "  next to this checkout and next to the main checkout); set CANN_CHECK=/path/to/check.sh"
        echo "  (docs/cann_headers.md)."
        return 0
    fi
    echo "CANN header check: $check --include $CANN_INCLUDE $ROOT"
    local status=0 log
    log="$(mktemp "${TMPDIR:-/tmp}/moe_mc2_cann_check.XXXXXX")"
    CANN_INCLUDE="$CANN_INCLUDE" bash "$check" -j"$JOBS" "$ROOT" > "$log" 2>&1 || status=$?
    # one line per distinct unit (keys that compile the same unit as key 0 are folded into the summary)
    grep -vE '^OK .*\(same unit as' "$log" || true
    rm -f "$log"
    CANN_INCLUDE="$CANN_INCLUDE" standalone_headers_check "$check" || status=1
    return $status
}

find_cann() {
    # 1. an environment that already sourced set_env.sh
    if [[ -n "${ASCEND_HOME_PATH:-}" && -d "${ASCEND_HOME_PATH}" ]]; then
        return 0
    fi
    # 2. the usual install locations of the toolkit
    local f
    for f in /usr/local/Ascend/ascend-toolkit/set_env.sh \
             "$HOME/Ascend/ascend-toolkit/set_env.sh" \
             /usr/local/Ascend/cann/set_env.sh \
             "$HOME/Ascend/cann/set_env.sh"; do
        if [[ -f "$f" ]]; then
            # shellcheck disable=SC1090
            set +u; source "$f"; set -u
            [[ -n "${ASCEND_HOME_PATH:-}" && -d "${ASCEND_HOME_PATH}" ]] && return 0
        fi
    done
    return 1
}

missing_cann() {
    cat >&2 <<MSG
scripts/cpp.sh package: the CANN toolkit was not found, so the OPP package cannot be built.
  looked for: \$ASCEND_HOME_PATH (unset or not a directory),
              /usr/local/Ascend/ascend-toolkit/set_env.sh, \$HOME/Ascend/ascend-toolkit/set_env.sh,
              /usr/local/Ascend/cann/set_env.sh, \$HOME/Ascend/cann/set_env.sh
  missing:    the Ascend CANN Toolkit (msopgen, the opbuild tool, the bisheng Ascend C compiler,
              the HCCL / Matmul high-level API headers)
  install:    download Ascend-cann-toolkit_<version>_linux-<arch>.run (CANN >= 8.0.RC3 for the Atlas A3
              HCCL high-level API) from https://www.hiascend.com/developer/download/community/result?module=cann,
              run:  bash Ascend-cann-toolkit_<version>_linux-<arch>.run --install
              then: source /usr/local/Ascend/ascend-toolkit/set_env.sh   and re-run scripts/cpp.sh package
  note:       the portable core and its tests need no CANN:  scripts/cpp.sh test
MSG
    exit 2
}

cmd_package() {
    find_cann || missing_cann
    local msopgen
    msopgen="$(command -v msopgen || true)"
    if [[ -z "$msopgen" && -x "$ASCEND_HOME_PATH/python/site-packages/bin/msopgen" ]]; then
        msopgen="$ASCEND_HOME_PATH/python/site-packages/bin/msopgen"
    fi
    if [[ -z "$msopgen" ]]; then
        echo "scripts/cpp.sh package: CANN found at $ASCEND_HOME_PATH but msopgen is missing;" \
             "install the full Ascend-cann-toolkit (not only the runtime/nnae package)" >&2
        exit 2
    fi
    local soc="${MOE_MC2_SOC:-Ascend910_9391}"            # an Atlas A3 SoC; ascend910_93 family
    local out="$ROOT/build_out"
    local proj="$out/msopgen_project"
    rm -rf "$proj"
    mkdir -p "$out"
    # 1. a fresh msOpGen custom-op project (CMakePresets.json, cmake/, build.sh, framework/ ...)
    "$msopgen" gen -i "$ROOT/op_host/msopgen/alltoall_allgather_bmm.json" -c "ai_core-$soc" -lan cpp -out "$proj"
    # 2. our sources replace the generated skeleton of the op
    rm -f "$proj/op_host/${OP_FILE}"*.cpp "$proj/op_host/${OP_FILE}"*.h "$proj/op_kernel/${OP_FILE}"*.cpp
    cp "$ROOT"/op_host/*.cpp "$ROOT"/op_host/*.h "$proj/op_host/"
    mkdir -p "$proj/op_host/core" "$proj/op_kernel"
    cp "$ROOT"/op_host/core/*.cpp "$ROOT"/op_host/core/*.h "$proj/op_host/core/"
    cp "$ROOT"/op_proto/*.cpp "$proj/op_host/"
    cp "$ROOT"/op_proto/*.h "$proj/op_host/"
    cp "$ROOT"/op_kernel/*.cpp "$ROOT"/op_kernel/*.h "$proj/op_kernel/"
    # the core includes ../../op_kernel/aag_bmm_offsets.h relative to op_host/core
    # 2b. CANN's public aclnn API (op_host/op_api): opbuild is made to generate the OpDef's API under
    #     the inner name aclnnInner...; the hand-written public aclnnAlltoAllAllGatherBatchMatMul
    #     goes into cust_opapi over it (msopgen_hook.py patches op_host/CMakeLists.txt, opapi.cmake
    #     checks at configure time what opbuild generated); stops here if the template lacks a hook
    mkdir -p "$proj/op_host/op_api"
    cp -L "$ROOT"/op_host/op_api/*.h "$ROOT"/op_host/op_api/*.cpp "$ROOT"/op_host/op_api/opapi.cmake \
        "$proj/op_host/op_api/"
    python3 "$ROOT/op_host/op_api/msopgen_hook.py" "$proj"
    # 3. vendor name, CANN path and target chip in the presets
    python3 - "$proj/CMakePresets.json" "$VENDOR" "$ASCEND_HOME_PATH" <<'PY'
import json, sys
path, vendor, cann = sys.argv[1:4]
p = json.load(open(path))
for preset in p.get("configurePresets", []):
    cv = preset.setdefault("cacheVariables", {})
    cv["vendor_name"] = {"type": "STRING", "value": vendor}
    cv["ASCEND_CANN_PACKAGE_PATH"] = {"type": "PATH", "value": cann}
    cv["ASCEND_COMPUTE_UNIT"] = {"type": "STRING", "value": "ascend910_93"}
    cv["ENABLE_BINARY_PACKAGE"] = {"type": "BOOL", "value": "True"}
json.dump(p, open(path, "w"), indent=4)
PY
    # 4. opbuild (aclnn + op info), kernel binaries, tiling lib, makeself .run
    (cd "$proj" && bash build.sh)
    # 4b. the op-API library exports CANN's public entry points (the wrapper's), not only the inner ones
    local opapi exported sym missing=""
    opapi="$(find "$proj/build_out" -name libcust_opapi.so -type f 2>/dev/null | head -n1 || true)"
    if [[ -z "$opapi" ]] || ! command -v nm >/dev/null; then
        echo "scripts/cpp.sh package: warning: the public aclnn entry points were not checked" \
             "(${opapi:-no libcust_opapi.so under $proj/build_out}; nm: $(command -v nm || echo missing))" >&2
    else
        exported="$(nm -D --defined-only "$opapi" | awk '{print $NF}')"
        for sym in aclnnAlltoAllAllGatherBatchMatMulGetWorkspaceSize aclnnAlltoAllAllGatherBatchMatMul \
                   moe_mc2_aclnn_api_version; do
            grep -qx "$sym" <<<"$exported" || missing+=" $sym"
        done
        if [[ -n "$missing" ]]; then
            echo "scripts/cpp.sh package: $opapi does not export:$missing (the public aclnn wrapper," \
                 "op_host/op_api, did not make it into the op-API library)" >&2
            exit 1
        fi
    fi
    local run
    run="$(ls -1 "$proj"/build_out/custom_opp_*.run 2>/dev/null | head -n1 || true)"
    if [[ -z "$run" ]]; then
        echo "scripts/cpp.sh package: build.sh finished but no custom_opp_*.run was produced" >&2
        exit 1
    fi
    cp "$run" "$out/"
    run="$out/$(basename "$run")"
    echo "OPP package: $run"
    echo "install with: $run --install-path=\${ASCEND_CUSTOM_OPP_PATH:-\$HOME/moe_mc2_opp}"
    echo "then:         source <install-path>/vendors/$VENDOR/bin/set_env.bash"
}

case "${1:-}" in
    test) cmd_test ;;
    cann-check) cmd_cann_check ;;
    package) cmd_package ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 64 ;;
esac
