#!/usr/bin/env bash
# C++ half of moe_mc2: the portable core tests and the CANN OPP package.
#
#   scripts/cpp.sh test      configure + build into build/ and run ctest (no CANN needed)
#   scripts/cpp.sh package   build the custom OPP package (vendor moe_mc2) into build_out/
#                            exit 2 with a clear message when CANN is not installed
#
# Needs for `test`: cmake >= 3.16, a C++17 compiler and the Debian packages
#   libgtest-dev googletest nlohmann-json3-dev
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${MOE_MC2_JOBS:-2}"
VENDOR="moe_mc2"
OP_TYPE="AlltoAllAllGatherBatchMatMul"
OP_FILE="allto_all_all_gather_batch_mat_mul"   # msOpGen / opbuild snake-case of OP_TYPE

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

cmd_test() {
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$ROOT/build" -j"$JOBS"
    ctest --test-dir "$ROOT/build" --output-on-failure -j"$JOBS"
    "$ROOT/build/tests/cpp/plan_report"
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
    package) cmd_package ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 64 ;;
esac
