#!/usr/bin/env bash
# Runs every test of djinn-scheduler on this machine. Stages (default: all, in this order):
#   build        build everything with warnings as errors, under AddressSanitizer +
#                UndefinedBehaviorSanitizer (DJINN_SANITIZE=OFF for a plain build)
#   unit         the unit tests (with the layering probes: an include across modules fails)
#   lint         clang-format (no diff) and clang-tidy over src/ (.clang-tidy), scripts/lint.sh
#   docs         the documentation's examples (scripts/check-docs.sh): every scheduler config of
#                README.md, docs/, CHANGELOG.md and the chart's README through -check-config (both
#                languages), every Helm values example and helm install command rendered
#   integration  the integration tests against a throwaway PostgreSQL 15 and Redis 7 on loopback
#                (scripts/lib/services.sh), through the sanitized binary
#   chaos        the fault-injection harness, short version (tests/chaos/run.sh, ~2 min): 3
#                replicas of the sanitized binary, every fault type, exactly-once checked
#   fuzz         the libFuzzer targets, 30 s each (tests/fuzz/run.sh)
#   tsan         ThreadSanitizer (scripts/tsan.sh): the unit tests, and the integration tests that
#                run the pass pipeline (planner and enqueue threads) and the service loop in the
#                test process and in the scheduler binaries they start (DJINN_TSAN_FILTER
#                overrides the set)
#   prometheus   the alerts and the dashboard with Debian's Prometheus 2.42 (tests/prometheus/run.sh,
#                ~80 s): promtool test rules for every alert, then 3 replicas scraped by two real
#                Prometheus servers (the chart's ServiceMonitor and PodMonitor relabelling): series,
#                rule health, no false alarm, every dashboard query, NoLeader firing when all stop
#   packaging    Helm chart, kustomize, systemd, SysVinit, shellcheck (scripts/check-packaging.sh)
#   image        the container image from the Dockerfile (its build stage compiles without
#                sanitizers and runs the unit tests), then -version, -check-config and a -once pass
#   pods         the chart's rendered Deployment, ConfigMap and Secret run as pods from that image
#                (podman kube play, tests/pods/run.sh, ~2 min): non-root, read-only root, the
#                Secret's passwords, the probes; then `kubectl rollout restart` after another while
#                crons fall due: every cron dispatched exactly once, the longest leaderless gap
# Pick stages by name: scripts/test.sh unit integration. Exits non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then
    stages=(build unit lint docs integration chaos fuzz tsan prometheus packaging image pods)
fi
want() {
    local s
    for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

"$root/scripts/install-deps.sh"

# One temporary directory for the whole run: the tests make theirs under it (TMPDIR), and it is
# removed at exit, also when a test fails or a process dies before cleaning up after itself.
run_tmp=$(mktemp -d /tmp/djinn-test.XXXXXX)
chmod 0755 "$run_tmp"  # the PostgreSQL of the TLS tests reads certificates from under it
export TMPDIR=$run_tmp
trap 'rm -rf "$run_tmp"' EXIT

sanitize=${DJINN_SANITIZE:-ON}
build_dir=${DJINN_BUILD_DIR:-$root/build/ci-$sanitize}

configure_and_build() {  # dir, extra cmake args...
    local dir=$1; shift
    cmake -S "$root" -B "$dir" -DDJINN_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs"
}

# Each section says how long the run has taken so far (CI must stay well under 30 minutes).
section() { printf '\n=== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

if want build || want unit || want integration || want docs || want prometheus; then
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
    # services.sh's EXIT trap stops them; keep removing the run's directory too.
    trap 'rc=$?; rm -rf "$run_tmp"; (exit $rc); services_stop' EXIT
    section "services: PostgreSQL on 127.0.0.1:$DJINN_TEST_PGPORT, Redis on 127.0.0.1:$DJINN_TEST_REDIS_PORT"
fi

if want docs; then
    section "documentation examples (-check-config, helm template)"
    "$root/scripts/check-docs.sh" --bin "$build_dir/djinn-scheduler"
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
    DJINN_TSAN_FILTER=${DJINN_TSAN_FILTER:-'DispatchStore|DispatchSessions|CorePass|Fleet|Service\.(Concurrent|ALeader|RedisDown|Sigterm|Plan)|ServiceFaults.*logic_error'} \
        "$root/scripts/tsan.sh" unit integration
fi

if want prometheus; then
    section "Prometheus: promtool test rules, then the live alerts and dashboard"
    "$root/tests/prometheus/run.sh" --bin "$build_dir/djinn-scheduler"
fi

if want packaging; then
    section "packaging checks"
    "$root/scripts/check-packaging.sh" static
fi

if want image; then
    section "container image"
    "$root/scripts/check-packaging.sh" image
fi

if want pods; then
    section "the chart's pods (podman kube play) and the rollout drill"
    "$root/tests/pods/run.sh"
fi

section "all requested stages passed: ${stages[*]}"
