#!/usr/bin/env bash
# moe_mc2 build entry point. Each command does its own set-up on a fresh machine.
#
#   ./build.sh demo [demo options]   the op on 8 local CPU ranks, checked against the reference
#   ./build.sh test [pytest options] every test: the C++ portable core and the kernel in its CPU model (ctest),
#                                    the CANN header check when CANN_INCLUDE is set, and the Python suite
#   ./build.sh bench [bench options] the overlap benchmark on local CPU ranks
#   ./build.sh package               the CANN OPP package (needs the CANN toolkit)
#   ./build.sh setup                 only the set-up (.venv, CPU torch, the package, test tools)
#
# Environment: PYTHON (default python3), MOE_MC2_TORCH (default torch==2.13.0: the CPU build
# here; CUDA or NPU users point it at their own build), MOE_MC2_SKIP_APT=1 to never call apt-get,
# CANN_INCLUDE (a tree of the open-source CANN headers, assembled outside the repository as
# docs/cann_headers.md describes) and CANN_CHECK (its check.sh) for the header check.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
TORCH_SPEC="${MOE_MC2_TORCH:-torch==2.13.0}"
DEBIAN_PACKAGES=(cmake g++ make libgtest-dev googletest nlohmann-json3-dev)

say() { printf '[build.sh] %s\n' "$*"; }
die() { printf '[build.sh] error: %s\n' "$*" >&2; exit 1; }

ensure_debian_packages() {
    local missing=()
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${MOE_MC2_SKIP_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null; then
        die "missing system packages: ${missing[*]} (install them, or use a Debian/Ubuntu machine)"
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
    local python="${PYTHON:-python3}"
    if [ ! -x "$PY" ]; then
        say "creating $VENV"
        "$python" -m venv "$VENV" || die "'$python -m venv' failed (Debian: apt-get install python3-venv)"
    fi
    # torch first and pinned: a bare 'torch' requirement would pull the multi-GB CUDA wheels.
    if ! "$PY" -c "import torch" >/dev/null 2>&1; then
        say "installing $TORCH_SPEC"
        "$PY" -m pip install -q "$TORCH_SPEC"
    fi
    local stamp="$VENV/.moe_mc2-installed"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        say "installing moe_mc2 (editable) with test and bench extras"
        "$PY" -m pip install -q -e "$ROOT[test,bench]"
        touch "$stamp"
    fi
}

setup() {
    ensure_debian_packages
    ensure_venv
}

cmd="${1:-help}"
shift || true
case "$cmd" in
    setup)
        setup ;;
    demo)
        setup
        exec "$PY" -m moe_mc2 demo "$@" ;;
    bench)
        setup
        exec "$PY" -m moe_mc2 bench "$@" ;;
    test)
        setup
        say "C++ portable core and the kernel's CPU model: configure, build, ctest"
        bash "$ROOT/scripts/cpp.sh" test
        say "CANN header check"
        bash "$ROOT/scripts/cpp.sh" cann-check
        say "Python suite"
        cd "$ROOT"
        exec "$PY" -m pytest "$@" ;;
    package)
        exec bash "$ROOT/scripts/cpp.sh" package "$@" ;;
    help|-h|--help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *)
        die "unknown command '$cmd' (try ./build.sh help)" ;;
esac
