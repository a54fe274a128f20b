#!/usr/bin/env bash
# Runs every test of djinn-scheduler on this machine. Stages (default: all, in this order):
#   build        build everything with warnings as errors, under AddressSanitizer +
#                UndefinedBehaviorSanitizer (DJINN_SANITIZE=OFF for a plain build)
#   unit         the unit tests (with the layering probes: an include across modules fails)
#   lint         clang-format (no diff) and clang-tidy over src/ (.clang-tidy), scripts/lint.sh
#   integration  the integration tests against a throwaway PostgreSQL 15 and Redis 7 on loopback
#                (scripts/lib/services.sh), through the sanitized binary
#   chaos        the fault-injection harness, short version (tests/chaos/run.sh, ~2 min): 3
#                replicas of the sanitized binary, every fault type, exactly-once checked
#   fuzz         the libFuzzer targets, 30 s each (tests/fuzz/run.sh)
#   tsan         ThreadSanitizer (scripts/tsan.sh): the unit tests, and the integration tests that
#                run the pass pipeline (planner and enqueue threads) and the service loop in the
#                test process and in the scheduler binaries they start (DJINN_TSAN_FILTER
#                overrides the set)
#   packaging    Helm chart, kustomize, systemd, SysVinit, shellcheck (scripts/check-packaging.sh)
#   image        the container image from the Dockerfile (its build stage compiles without
#                sanitizers and runs the unit tests), then -version, -check-config and a -once pass
# Pick stages by name: scripts/test.sh unit integration. Exits non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then
    stages=(build unit lint integration chaos fuzz tsan packaging image)
fi
want() {
    local s
    for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

"$root/scripts/install-deps.sh"

sanitize=${DJINN_SANITIZE:-ON}
build_dir=${DJINN_BUILD_DIR:-$root/build/ci-$sanitize}

configure_and_build() {  # dir, extra cmake args...
    local dir=$1; shift
    cmake -S "$root" -B "$dir" -DDJINN_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
}

section() { printf '\n=== %s\n' "$*"; }

if want build || want unit || want integration; then
    if [ "$sanitize" = ON ]; then
        section "build (warnings as errors, ASan + UBSan)"
        configure_and_build "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DDJINN_SANITIZE=ON \
            -DDJINN_FAILPOINTS=ON
    else
        section "build (warnings as errors)"
        configure_and_build "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDJINN_SANITIZE=OFF \
            -DDJINN_FAILPOINTS=ON
    fi
fi
# Sanitizer findings fail the run.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

if want unit; then
    section "unit tests"
    ctest --test-dir "$build_dir" -L unit --output-on-failure -j"$jobs"
fi

if want lint; then
    section "lint (clang-format, clang-tidy)"
    "$root/scripts/lint.sh"
fi

services_needed=0
for s in integration image; do want "$s" && services_needed=1; done
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

if want chaos; then
    section "chaos harness, short version (sanitized binary)"
    "$root/tests/chaos/run.sh" --seed "${DJINN_CHAOS_SEED:-1}" --duration 120 \
        --bin "$build_dir/djinn-scheduler"
fi

if want fuzz; then
    section "fuzzing (libFuzzer, ${DJINN_FUZZ_SECONDS:-30} s per target)"
    "$root/tests/fuzz/run.sh"
fi

if want tsan; then
    section "ThreadSanitizer (unit tests; integration: the store, the pass, the fleet, the service loop)"
    DJINN_TSAN_FILTER=${DJINN_TSAN_FILTER:-'DispatchStore|CorePass|Fleet|Service\.(Concurrent|ALeader|RedisDown|Sigterm|Plan)|ServiceFaults.*logic_error'} \
        "$root/scripts/tsan.sh" unit integration
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
