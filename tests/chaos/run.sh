#!/usr/bin/env bash
# Fault-injection harness: 3 djinn-scheduler replicas against their own throwaway PostgreSQL 15
# and Redis 7 (loopback only) while crons fall due continuously; kills, freezes and restarts the
# leader, PostgreSQL and Redis at seeded moments, then checks exactly-once from the database and
# the queues. See docs/reliability.md.
#
#   tests/chaos/run.sh [--seed N] [--duration SECONDS] [--keep] [--bin PATH]
#
#   --seed N            seeds the fault schedule and the workload (default: 1)
#   --duration SECONDS  how long to inject faults (default 120: the CI version); every fault type
#                       is injected at least once whatever the duration, so a short duration
#                       still runs one of each (about 2 minutes)
#   --keep              keep the run directory (logs of every replica, PostgreSQL, Redis)
#   --bin PATH          the djinn-scheduler binary (default: $DJINN_SCHEDULER_BIN, else built in
#                       build-chaos/ with cmake)
#
# Long version (documented in docs/reliability.md): tests/chaos/run.sh --seed 7 --duration 1200
# Exit status: 0 when every check passed, 1 on any loss, duplicate or invariant violation, 2 on
# a harness error.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

bin=${DJINN_SCHEDULER_BIN:-}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --bin=*) bin=${1#--bin=}; shift ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

# A sanitized binary reports libpqxx 6.4's known leak on a broken connection (tests/lsan.supp) and
# exits 1 at shutdown, which would read as a failed SIGTERM drain: suppress it as the test suite does.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}

if [ -z "$bin" ]; then
    build_dir=${DJINN_CHAOS_BUILD_DIR:-$root/build-chaos}
    cmake -S "$root" -B "$build_dir" -DDJINN_WERROR=ON >/dev/null
    cmake --build "$build_dir" -j"$(nproc)" --target djinn-scheduler >/dev/null
    bin=$build_dir/djinn-scheduler
fi
if [ ! -x "$bin" ]; then
    echo "chaos: no djinn-scheduler binary at $bin" >&2
    exit 2
fi

for tool in psql redis-cli redis-server python3; do
    command -v "$tool" >/dev/null || { echo "chaos: $tool not found" >&2; exit 2; }
done

# Its own PostgreSQL and Redis: the harness restarts both, so it never shares them.
# shellcheck source=scripts/lib/services.sh
source "$root/scripts/lib/services.sh"
if [[ " ${args[*]:-} " == *" --keep "* ]]; then
    export DJINN_KEEP_SERVICES_DIR=1
fi
services_start
echo "chaos: PostgreSQL 127.0.0.1:$DJINN_TEST_PGPORT, Redis 127.0.0.1:$DJINN_TEST_REDIS_PORT, run directory $DJINN_TEST_RUNDIR"

rc=0
python3 "$root/tests/chaos/chaos.py" --bin "$bin" "${args[@]}" || rc=$?
if [ "${DJINN_KEEP_SERVICES_DIR:-0}" = 1 ]; then
    echo "chaos: logs kept in $DJINN_TEST_RUNDIR"
fi
exit "$rc"
