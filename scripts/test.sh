#!/usr/bin/env bash
# Runs every test of djinn-scheduler on this machine:
#   1. builds with warnings as errors, runs the unit tests and the integration tests against a
#      throwaway PostgreSQL 15 and Redis 7 on loopback (scripts/lib/services.sh);
#   2. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs both suites;
#   3. checks the packaging (Helm chart, kustomize, systemd, SysVinit, shellcheck) and, when
#      this machine can build images, the container image with a real -once pass.
# Stages can be chosen: scripts/test.sh [build] [unit] [integration] [sanitize] [packaging] [image]
# (default: all of them). Exits non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then
    stages=(build unit integration sanitize packaging image)
fi
want() {
    local s
    for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

"$root/scripts/install-deps.sh"

build_dir=${DJINN_BUILD_DIR:-$root/build/ci}
san_dir=${DJINN_SANITIZE_BUILD_DIR:-$root/build/asan}

configure_and_build() {  # dir, extra cmake args...
    local dir=$1; shift
    cmake -S "$root" -B "$dir" -DDJINN_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
}

section() { printf '\n=== %s\n' "$*"; }

if want build || want unit || want integration || want image; then
    section "build (warnings as errors)"
    configure_and_build "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi

if want unit; then
    section "unit tests"
    ctest --test-dir "$build_dir" -L unit --output-on-failure -j"$jobs"
fi

services_needed=0
for s in integration sanitize image; do want "$s" && services_needed=1; done
if [ $services_needed = 1 ]; then
    # shellcheck source=scripts/lib/services.sh
    source "$root/scripts/lib/services.sh"
    services_start
    section "services: PostgreSQL on 127.0.0.1:$DJINN_TEST_PGPORT, Redis on 127.0.0.1:$DJINN_TEST_REDIS_PORT"
fi

if want integration; then
    section "integration tests (real PostgreSQL and Redis)"
    ctest --test-dir "$build_dir" -L integration --output-on-failure
fi

if want sanitize; then
    section "build with ASan + UBSan"
    configure_and_build "$san_dir" -DCMAKE_BUILD_TYPE=Debug -DDJINN_SANITIZE=ON
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    section "unit + integration tests under ASan + UBSan"
    ctest --test-dir "$san_dir" --output-on-failure -L 'unit|integration'
fi

if want packaging; then
    section "packaging checks"
    "$root/scripts/check-packaging.sh" static
fi

if want image; then
    section "container image"
    "$root/scripts/check-packaging.sh" image
fi

section "all requested stages passed: ${stages[*]}"
