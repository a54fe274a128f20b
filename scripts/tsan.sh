#!/usr/bin/env bash
# Builds djinn-scheduler with ThreadSanitizer (-DDJINN_TSAN=ON) in its own build directory and
# runs the concurrent parts under it: the unit tests and the integration tests (real PostgreSQL
# and Redis from scripts/lib/services.sh; the scheduler binary they start is the TSan one too).
#   scripts/tsan.sh                 unit + integration
#   scripts/tsan.sh unit            only the unit tests
#   DJINN_TSAN_BUILD_DIR=dir        build directory (default <repo>/build/tsan)
#   DJINN_TSAN_FILTER=regex         ctest -R filter for the integration tests
# Exits non-zero on a data race or any test failure; TSan reports go to <build>/tsan-logs/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DJINN_TSAN_BUILD_DIR:-$root/build/tsan}
stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then stages=(unit integration); fi
want() {
    local s
    for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

echo "=== build with ThreadSanitizer in $build"
cmake -S "$root" -B "$build" -DDJINN_WERROR=ON -DDJINN_TSAN=ON -DDJINN_FAILPOINTS=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

logs="$build/tsan-logs"
rm -rf "$logs"
mkdir -p "$logs"
# Every process (tests and the scheduler binaries they spawn) writes its reports to a file of
# its own, so a race in a child scheduler is not lost in a test's captured output.
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 history_size=4 log_path=$logs/tsan ${TSAN_OPTIONS:-}"

status=0
if want unit; then
    echo "=== unit tests under TSan"
    ctest --test-dir "$build" -L unit --output-on-failure -j"$(nproc)" || status=1
fi
if want integration; then
    # shellcheck source=scripts/lib/services.sh
    source "$root/scripts/lib/services.sh"
    services_start
    echo "=== integration tests under TSan (PostgreSQL 127.0.0.1:$DJINN_TEST_PGPORT, Redis 127.0.0.1:$DJINN_TEST_REDIS_PORT)"
    ctest --test-dir "$build" -L integration --output-on-failure --timeout 300 \
        ${DJINN_TSAN_FILTER:+-R "$DJINN_TSAN_FILTER"} || status=1
fi

reports=$(find "$logs" -type f -name 'tsan*' | wc -l)
if [ "$reports" -gt 0 ]; then
    status=1
    echo "=== ThreadSanitizer: $reports report file(s) in $logs"
    grep -h -A12 '^WARNING: ThreadSanitizer' "$logs"/tsan* | head -200
    echo "=== distinct warnings:"
    grep -h '^WARNING: ThreadSanitizer\|^SUMMARY: ThreadSanitizer' "$logs"/tsan* | sort | uniq -c | sort -rn
else
    echo "=== ThreadSanitizer: no reports"
fi
exit $status
