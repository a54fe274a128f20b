#!/usr/bin/env bash
# Fault-injection harness: 3 djinn-scheduler replicas against their own throwaway PostgreSQL 15
# and Redis 7 (loopback, and a veth pair for the partition fault) while crons fall due continuously; kills, freezes and restarts the
# leader, PostgreSQL and Redis at seeded moments, then checks exactly-once from the database and
# the queues. See docs/reliability.md.
#
#   tests/chaos/run.sh [--seed N] [--duration SECONDS] [--keep] [--bin PATH] [--faults A,B]
#                      [--lived BUILDS] [--direct] [--dispatch-sessions K]
#
#   --seed N            seeds the fault schedule and the workload (default: 1)
#   --duration SECONDS  how long to inject faults (default 120: the CI version); every fault type
#                       is injected at least once whatever the duration, so a short duration
#                       still runs one of each (about 2 minutes)
#   --keep              keep the run directory (logs of every replica, PostgreSQL, Redis)
#   --bin PATH          the djinn-scheduler binary (default: $DJINN_SCHEDULER_BIN, else built in
#                       build-chaos/ with cmake)
#   --faults A,B,...    only these fault types (default: all of them)
#   --lived BUILDS      first load BUILDS finished builds of history and BUILDS/10 crons that are
#                       not due (bench/sql/lived.sql); the checks read only what the run made
#   --direct            no PgBouncer: every replica connects to PostgreSQL directly
#   --dispatch-sessions K  every replica splits its batches across K sessions
#                       (database.dispatch_sessions; default 1)
#
# The `partition` fault runs replica c in a network namespace of its own (tests/chaos/partition.py:
# a veth pair on a /30 of TEST-NET-2, nothing routed anywhere else) and cuts its link while it
# leads. It needs root and iproute2 (ip, tc); without them it is skipped with a message.
#
# Long version (documented in docs/reliability.md):
#   tests/chaos/run.sh --seed 7 --duration 1200 --lived 1000000
# Exit status: 0 when every check passed, 1 on any loss, duplicate or invariant violation, 2 on
# a harness error (an interrupted run included).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

bin=${DJINN_SCHEDULER_BIN:-}
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --bin=*) bin=${1#--bin=}; shift ;;
        -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# The partition fault's network namespace and veth pair, before the services: PostgreSQL must
# listen on the host end from its start (listen_addresses is a start-time setting, and one given
# on the command line, as services.sh does, wins over ALTER SYSTEM). Deleted on every exit.
partition=$root/tests/chaos/partition.py
net_tag=$$
# shellcheck disable=SC2317 # called from the EXIT trap
net_down() { python3 "$partition" down "$net_tag" || true; }
trap net_down EXIT
while IFS='=' read -r key value; do
    [ -n "$key" ] && export "$key=$value"
done < <(python3 "$partition" up "$net_tag")
# Commit timestamps: for the partition and PgBouncer faults the harness checks when each build
# committed, and by whom.
export DJINN_TEST_PGOPTS="${DJINN_TEST_PGOPTS:-} -c track_commit_timestamp=on"
if [ -n "${DJINN_CHAOS_NETNS:-}" ]; then
    export DJINN_TEST_PGOPTS="$DJINN_TEST_PGOPTS -c listen_addresses=127.0.0.1,$DJINN_CHAOS_NET_HOST_ADDR"
else
    echo "chaos: the partition fault is skipped: ${DJINN_CHAOS_PARTITION_SKIP:-no network namespace}" >&2
fi

# Its own PostgreSQL and Redis: the harness restarts both, so it never shares them.
# shellcheck source=scripts/lib/services.sh
source "$root/scripts/lib/services.sh"
if [[ " ${args[*]:-} " == *" --keep "* ]]; then
    export DJINN_KEEP_SERVICES_DIR=1
fi
services_start
# services_start set its own EXIT trap: stop the services and delete the namespace, keeping the
# exit status.
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local rc=$?
    set +e  # a failed step must not cut the cleanup short (nor `(exit $rc)` end it)
    net_down
    # The harness stops its PgBouncer itself; if the harness was killed, the pid in the pidfile
    # of our run directory is ours (checked by its command line).
    local pidfile=$DJINN_TEST_RUNDIR/pgbouncer/pgbouncer.pid pid
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
                grep -qF "$DJINN_TEST_RUNDIR/pgbouncer/pgbouncer.ini"; then
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    # The standbys the pg_failover fault made (pgdata-2, or pgdata itself once rebuilt: that
    # one services_stop stops).
    local d
    for d in "$DJINN_TEST_RUNDIR"/pgdata-*; do
        if [ -f "$d/postmaster.pid" ]; then
            as_postgres "$DJINN_TEST_PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1
        fi
    done
    (exit "$rc")
    services_stop
}
trap cleanup EXIT
echo "chaos: PostgreSQL 127.0.0.1:$DJINN_TEST_PGPORT, Redis 127.0.0.1:$DJINN_TEST_REDIS_PORT, run directory $DJINN_TEST_RUNDIR"
if [ -n "${DJINN_CHAOS_NETNS:-}" ]; then
    echo "chaos: replica c in network namespace $DJINN_CHAOS_NETNS ($DJINN_CHAOS_NET_NS_ADDR), PostgreSQL and Redis also on $DJINN_CHAOS_NET_HOST_ADDR ($DJINN_CHAOS_NET_SUBNET)"
fi

# The harness in the background so that a SIGTERM, SIGINT or SIGHUP of this script reaches it
# (it then restores the link, stops the replicas and exits 2) before the services go.
rc=0
python3 "$root/tests/chaos/chaos.py" --bin "$bin" "${args[@]}" &
chaos_pid=$!
trap 'kill -TERM "$chaos_pid" 2>/dev/null || true' TERM INT HUP
while :; do
    if wait "$chaos_pid"; then rc=0; else rc=$?; fi
    kill -0 "$chaos_pid" 2>/dev/null || break  # else wait was cut short by a signal
done
trap - TERM INT HUP
if [ "${DJINN_KEEP_SERVICES_DIR:-0}" = 1 ]; then
    echo "chaos: logs kept in $DJINN_TEST_RUNDIR"
fi
exit "$rc"
