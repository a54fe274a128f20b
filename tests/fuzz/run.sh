#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs each
# for a bounded time from the committed seed corpus (tests/fuzz/corpus/<target>).
#
#   tests/fuzz/run.sh                 every target, DJINN_FUZZ_SECONDS (30) seconds each
#   tests/fuzz/run.sh manifest_plan   only the named targets (config_djinn config_yaml manifest_plan
#                                     manifest_diff)
#
# Environment:
#   DJINN_FUZZ_SECONDS   time per target (default 30)
#   DJINN_FUZZ_JOBS      parallel fuzzing processes per target (default 1)
#   DJINN_FUZZ_BUILD_DIR build directory (default <repo>/build/fuzz)
#   DJINN_FUZZ_WORK_DIR  where the growing corpora and crash files go (default <build>/work);
#                        the committed seeds are never modified
#   CXX                  the clang++ to use (default clang++-14, then clang++)
# Exits non-zero when a target crashes, leaks, hangs (-timeout, 10 s per input) or exceeds the
# memory limit (2 GB); the reproducer is left in the work directory and named in the output.
# Re-run one input: <build>/<target>_fuzz <file>
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/tests/fuzz"
seconds=${DJINN_FUZZ_SECONDS:-30}
jobs=${DJINN_FUZZ_JOBS:-1}
build=${DJINN_FUZZ_BUILD_DIR:-$root/build/fuzz}
work=${DJINN_FUZZ_WORK_DIR:-$build/work}
all_targets=(config_djinn config_yaml manifest_plan manifest_diff)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all_targets[@]}"); fi

cxx=${CXX:-}
if [ -z "$cxx" ]; then
    for c in clang++-14 clang++; do
        if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
    done
fi
if [ -z "$cxx" ]; then
    echo "run.sh: no clang++ found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
fi

echo "=== building fuzz targets with $cxx in $build"
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=None >/dev/null
cmake --build "$build" -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=()
for t in "${targets[@]}"; do
    bin="$build/${t}_fuzz"
    [ -x "$bin" ] || { echo "run.sh: unknown target $t (known: ${all_targets[*]})" >&2; exit 2; }
    corpus="$work/$t/corpus"
    artifacts="$work/$t/artifacts"
    mkdir -p "$corpus" "$artifacts"
    log="$work/$t/fuzz.log"
    echo "=== $t: ${seconds}s from $(find "$here/corpus/$t" -type f | wc -l) seeds"
    rc=0
    parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    # The first corpus directory receives new inputs; the seeds are read only.
    (cd "$work/$t" && "$bin" "$corpus" "$here/corpus/$t" \
        -dict="$here/dicts/$t.dict" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        "${parallel[@]}" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1) || rc=$?
    if [ "$jobs" -gt 1 ]; then cat "$work/$t"/fuzz-*.log >>"$log" 2>/dev/null || true; fi
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}' || true)
    cov=$(grep -ho 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "!!! $t FAILED (exit $rc); reproducer(s):"
        find "$artifacts" -type f | sed 's/^/    /'
        grep -E 'ERROR|SUMMARY|invariant|deadly signal|timeout' "$log" | head -20 | sed 's/^/    /' || true
        summary+=("$t: FAILED after $execs executions (log $log)")
    else
        summary+=("$t: ok, $execs executions in ${seconds}s, coverage ${cov:-?} edges, corpus $(find "$corpus" -type f | wc -l) files")
    fi
done

echo "=== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $status
