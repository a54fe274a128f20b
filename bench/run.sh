#!/usr/bin/env bash
# The midnight-burst benchmark (issue 6). Usage:
#
#   bench/run.sh [N ...]          # default: 1000 10000 100000
#
# Starts its own PostgreSQL 15 and Redis (scripts/lib/services.sh), builds a Release
# djinn-scheduler, and for each N, BENCH_REPEAT times: seeds N due crons (bench/sql/seed.sql),
# runs one `-once` pass and measures it; resets the database, seeds again and times the CEILING
# (bench/sql/ceiling.sql: the same rows written by PostgreSQL alone). Medians are reported.
# Then the idle pass: a pass with BENCH_IDLE_CRONS crons none of which is due, scanning cron,
# after an idle pass (whose hint spares the scan), and with CREATE INDEX ON cron (next_run). Then the lived database (BENCH_LIVED): BENCH_IDLE_CRONS
# crons, a year of finished builds with every row Djinn writes for them (bench/sql/lived.sql),
# and a backlog of queued builds left by the bursts: the BENCH_LIVED_BURST burst on it against
# the same burst on a database without history (rounds interleaved; each burst in a running
# leader, its crons falling due at a tick after an idle pass, as at midnight), the idle pass
# (without and with the index, and a first start without the recovery watermark), and the
# takeover (leader SIGKILL to the standby's first completed pass) with a BENCH_LIVED_BACKLOG
# backlog. Prints one
# Markdown table and writes it to BENCH_OUT.
#
# Environment:
#   BENCH_BUILD_DIR     build tree (default build-bench; configured Release if missing)
#   BENCH_OUT           result file (default bench/results/latest.md)
#   BENCH_IDLE_CRONS    crons in the table for the idle pass (default 1000000; 0 skips it)
#   BENCH_BATCH_COMPARE another batch_size, run at the largest N for information
#                       (default 5000; 0 skips it)
#   BENCH_REPEAT        rounds of (pass, ceiling) per N, medians reported (default 3)
#   BENCH_LIVED         finished builds of history for the lived database (default 1000000;
#                       0 skips the lived scenario)
#   BENCH_LIVED_BURST   the burst on the lived database (default 20000)
#   BENCH_LIVED_ROUNDS  rounds of that burst on a fresh and on the lived database (default 3;
#                       each round on crons of its own, so the backlog adds up on both)
#   BENCH_LIVED_BACKLOG queued builds at the takeover (default 100000; at least the burst)
#   BENCH_SKIP_BUILD=1  use the binary in BENCH_BUILD_DIR as it is
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BENCH_BUILD_DIR:-$ROOT/build-bench}
OUT=${BENCH_OUT:-$ROOT/bench/results/latest.md}
IDLE_CRONS=${BENCH_IDLE_CRONS:-1000000}
BATCH_COMPARE=${BENCH_BATCH_COMPARE:-5000}
REPEAT=${BENCH_REPEAT:-3}
LIVED=${BENCH_LIVED:-1000000}
LIVED_BURST=${BENCH_LIVED_BURST:-20000}
LIVED_ROUNDS=${BENCH_LIVED_ROUNDS:-3}
LIVED_BACKLOG=${BENCH_LIVED_BACKLOG:-100000}
if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(1000 10000 100000); fi
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: N must be a positive integer: $n" >&2; exit 2; }
done
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: BENCH_REPEAT must be a positive integer" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- build -------------------------------------------------------------------------------------
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        # -Wno-restrict / -Wno-maybe-uninitialized: GCC 12 false positives at -O3 in code
        # outside bench/ (see BENCHMARKS.md); every other warning stays an error.
        cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDJINN_WERROR=ON \
            -DCMAKE_CXX_FLAGS="-Wno-restrict -Wno-maybe-uninitialized" >/dev/null
    fi
    log "building djinn-scheduler (Release) in $BUILD_DIR"
    cmake --build "$BUILD_DIR" -j2 --target djinn-scheduler >/dev/null
fi
SCHEDULER=$BUILD_DIR/djinn-scheduler
[ -x "$SCHEDULER" ] || { echo "bench/run.sh: no binary at $SCHEDULER" >&2; exit 1; }
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" ||
    log "warning: $BUILD_DIR is not a Release build"

# --- services ----------------------------------------------------------------------------------
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
log "starting PostgreSQL and Redis"
services_start
RUN=$DJINN_TEST_RUNDIR
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$DJINN_TEST_PGHOST" -p "$DJINN_TEST_PGPORT" -U postgres)
REDIS=(redis-cli -h "$DJINN_TEST_REDIS_HOST" -p "$DJINN_TEST_REDIS_PORT")
DB=bench
HZ=$(getconf CLK_TCK)

now_s() { date +%s.%N; }
# CPU seconds of this PostgreSQL cluster: the postmaster (with its reaped children) and its
# live children (backends, checkpointer, autovacuum ...), from /proc.
pg_cpu() {
    local pm
    pm=$(head -1 "$DJINN_TEST_PGDATA/postmaster.pid")
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v hz="$HZ" '
        { pid = $1; sub(/^.*\) /, "")
          # after "comm) ": $2 ppid, $12 utime, $13 stime, $14 cutime, $15 cstime
          if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm) t += $12 + $13 }
        END { printf "%.2f", t / hz }'
}

reset_db() {  # fresh database from the Djinn template, seeded with $1 crons (due: $2), empty Redis
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE $DJINN_TEST_PGTEMPLATE"
    "${REDIS[@]}" flushall >/dev/null
    "${PSQL[@]}" -d "$DB" -v n="$1" -v due="$2" -f "$ROOT/bench/sql/seed.sql" >/dev/null
}

write_config() {  # $1 batch_size [$2 file, default scheduler.conf] [$3 log file] [$4 log level] [$5 database, default $DB]
    cat >"$RUN/${2:-scheduler.conf}" <<CONF
log ${4:-info} "${3:-$RUN/scheduler.log}"
batch_size $1
drivers ["docker", "qemu-x86_64",]
crypto { salt "bench-salt-0123456789" }
database {
    addr "$DJINN_TEST_PGHOST:$DJINN_TEST_PGPORT"
    name "${5:-$DB}"
    username "djinn_scheduler"
    password "secret"
}
redis { addr "$DJINN_TEST_REDIS_HOST:$DJINN_TEST_REDIS_PORT" }
CONF
}

# One -once pass. Sets: P_WALL P_PASS P_RSS_MB P_CPU P_PGCPU P_DELAY (all strings).
run_pass() {  # $1 batch_size [$2 log level]
    write_config "$1" scheduler.conf "$RUN/scheduler.log" "${2:-info}"
    : >"$RUN/scheduler.log"
    local pg0 pg1 t0 t1 start_ms last
    pg0=$(pg_cpu)
    t0=$(now_s)
    /usr/bin/time -v -o "$RUN/time.txt" "$SCHEDULER" -config "$RUN/scheduler.conf" -once ||
        { cat "$RUN/scheduler.log" >&2; echo "bench/run.sh: the pass failed" >&2; exit 1; }
    t1=$(now_s)
    pg1=$(pg_cpu)
    P_WALL=$(echo "$t1 - $t0" | bc -l)
    P_PASS=$(sed -n 's/.*pass done: .*[, ]\([0-9.]*\) s$/\1/p' "$RUN/scheduler.log" | tail -1)
    P_RSS_MB=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$RUN/time.txt")
    P_CPU=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$RUN/time.txt")
    P_PGCPU=$(echo "$pg1 - $pg0" | bc -l)
    # Dispatch delay of the last build: from the start of the pass (the tick at which the whole
    # burst fell due) to the pass's summary line, written once the last batch is enqueued.
    start_ms=$(date -u -d "@$t0" +%s%3N)
    last=$(grep ' pass done: ' "$RUN/scheduler.log" | tail -1 | cut -d' ' -f1 || true)
    if [ -n "$last" ]; then
        P_DELAY=$(echo "($(date -u -d "${last%Z}Z" +%s%3N) - $start_ms) / 1000" | bc -l)
    else
        P_DELAY=
    fi
}

fmt() { printf '%.*f' "$1" "$2"; }

check_rows() {  # $1 expected builds
    local builds queued bad
    builds=$("${PSQL[@]}" -d "$DB" -Atc "SELECT count(*) FROM builds")
    queued=$("${REDIS[@]}" llen builds_docker:active)
    if [ "$builds" != "$1" ] || [ "$queued" != "$1" ]; then
        echo "bench/run.sh: expected $1 builds and queue jobs, found $builds and $queued" >&2
        exit 1
    fi
    # Every user's builds are numbered 1..k without gaps or repeats (numbers across batches).
    bad=$("${PSQL[@]}" -d "$DB" -Atc "SELECT count(*) FROM (SELECT user_id, count(*) AS c,
        max(number) AS m, count(DISTINCT number) AS d FROM builds GROUP BY user_id) x
        WHERE c <> m OR d <> c")
    [ "$bad" = 0 ] || { echo "bench/run.sh: $bad user(s) with wrong build numbers" >&2; exit 1; }
}

# Rows per table (for the notes: the ceiling writes what a pass writes).
row_counts() {
    "${PSQL[@]}" -d "$DB" -Atc "SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (
      SELECT 'builds' t, count(*) n FROM builds UNION ALL SELECT 'triggers', count(*) FROM build_triggers
      UNION ALL SELECT 'tags', count(*) FROM build_tags UNION ALL SELECT 'cron_builds', count(*) FROM cron_builds
      UNION ALL SELECT 'drivers', count(*) FROM build_drivers UNION ALL SELECT 'variables', count(*) FROM build_variables
      UNION ALL SELECT 'stages', count(*) FROM build_stages UNION ALL SELECT 'jobs', count(*) FROM build_jobs
      UNION ALL SELECT 'artifacts', count(*) FROM build_artifacts) x"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2}'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -1; }
minimum() { printf '%s\n' "$@" | sort -g | head -1; }

ROWS=()
EXTRA=()
for n in "${SIZES[@]}"; do
    # REPEAT rounds of (pass, ceiling), each on a freshly seeded database, alternating so that a
    # slow minute of this shared machine hits both; the table shows medians.
    A_PASS=() A_WALL=() A_RSS=() A_CPU=() A_PG=() A_DELAY=() A_CEIL=() A_CPG=() A_RATIO=()
    for ((round = 1; round <= REPEAT; round++)); do
        log "N=$n, round $round/$REPEAT: seeding, scheduler pass"
        reset_db "$n" true
        run_pass 1000
        check_rows "$n"
        counts_pass=$(row_counts)

        log "N=$n, round $round/$REPEAT: seeding, ceiling"
        reset_db "$n" true
        pg0=$(pg_cpu)
        c_time=$("${PSQL[@]}" -d "$DB" -At -v n="$n" -f "$ROOT/bench/sql/ceiling.sql" | tail -1)
        pg1=$(pg_cpu)
        counts_ceiling=$(row_counts)
        if [ "$counts_pass" != "$counts_ceiling" ]; then
            echo "bench/run.sh: the ceiling wrote other rows than the pass:" >&2
            echo "  pass:    $counts_pass" >&2
            echo "  ceiling: $counts_ceiling" >&2
            exit 1
        fi
        A_PASS+=("$P_PASS") A_WALL+=("$P_WALL") A_RSS+=("$P_RSS_MB") A_CPU+=("$P_CPU")
        A_PG+=("$P_PGCPU") A_DELAY+=("${P_DELAY:-0}") A_CEIL+=("$c_time")
        A_CPG+=("$(echo "$pg1 - $pg0" | bc -l)")
        A_RATIO+=("$(echo "$c_time / $P_PASS" | bc -l)")
        log "N=$n, round $round/$REPEAT: pass $(fmt 2 "$P_PASS") s, ceiling $(fmt 2 "$c_time") s, ratio $(fmt 2 "${A_RATIO[-1]}"), RSS $P_RSS_MB MB"
    done
    s_pass=$(median "${A_PASS[@]}")
    c_time=$(median "${A_CEIL[@]}")
    ratio=$(echo "$c_time / $s_pass" | bc -l)
    rate=$(echo "$n / $s_pass" | bc -l)
    range="$(fmt 2 "$(minimum "${A_RATIO[@]}")")-$(fmt 2 "$(maximum "${A_RATIO[@]}")")"
    ROWS+=("| $n | $(fmt 2 "$s_pass") | $(fmt 2 "$(median "${A_WALL[@]}")") | $(fmt 2 "$c_time") | **$(fmt 2 "$ratio")** | $range | $(fmt 0 "$rate") | $(maximum "${A_RSS[@]}") | $(fmt 2 "$(median "${A_CPU[@]}")") / $(fmt 2 "$(median "${A_PG[@]}")") | $(fmt 0 "$(echo "$(median "${A_CPU[@]}") * 1000000 / $n" | bc -l)") / $(fmt 0 "$(echo "$(median "${A_PG[@]}") * 1000000 / $n" | bc -l)") | $(fmt 2 "$(median "${A_CPG[@]}")") | $(fmt 2 "$(median "${A_DELAY[@]}")") |")
    log "N=$n: median pass $(fmt 2 "$s_pass") s, median ceiling $(fmt 2 "$c_time") s, ratio $(fmt 2 "$ratio") (rounds: $range)"
    log "N=$n: rows $counts_pass"
done

largest=${SIZES[-1]}
if [ "$BATCH_COMPARE" != 0 ]; then
    log "N=$largest: batch_size $BATCH_COMPARE (for information)"
    reset_db "$largest" true
    run_pass "$BATCH_COMPARE"
    check_rows "$largest"
    EXTRA+=("| batch_size $BATCH_COMPARE, N=$largest | $(fmt 2 "$P_PASS") s pass, $(fmt 0 "$(echo "$largest / $P_PASS" | bc -l)") builds/s, RSS $P_RSS_MB MB, CPU $(fmt 2 "$P_CPU") / $(fmt 2 "$P_PGCPU") s |")
fi

# IDLE_PASS / IDLE_WALL: medians of 3 idle -once passes (an idle pass logs its time at debug level
# only). "scan": each without the idle hint (store/due_hint.hpp), so each reads all of cron;
# "hint": after an idle pass that left one, as every idle pass after the first does.
drop_hints() {
    "${REDIS[@]}" --scan --pattern 'djinn-scheduler:due-hint:*' | xargs -r "${REDIS[@]}" del >/dev/null
}
idle_passes() {
    local times=() walls=() _
    if [ "$1" = hint ]; then drop_hints; run_pass 1000 debug; fi
    for _ in 1 2 3; do
        if [ "$1" = scan ]; then drop_hints; fi
        run_pass 1000 debug
        times+=("$P_PASS") walls+=("$P_WALL")
    done
    if [ "$1" = hint ] && ! grep -q 'nothing due, not scanned' "$RUN/scheduler.log"; then
        echo "bench/run.sh: the idle pass after an idle pass scanned cron (no hint used)" >&2
        exit 1
    fi
    IDLE_PASS=$(median "${times[@]}") IDLE_WALL=$(median "${walls[@]}")
}

if [ "$IDLE_CRONS" != 0 ]; then
    log "idle: seeding $IDLE_CRONS crons, none due"
    reset_db "$IDLE_CRONS" false
    idle_passes scan
    EXTRA+=("| idle pass, $IDLE_CRONS crons, no index, scanning cron (no idle hint) | $(fmt 3 "$IDLE_PASS") s (median of 3), RSS $P_RSS_MB MB |")
    idle_passes hint
    EXTRA+=("| idle pass, $IDLE_CRONS crons, no index, after an idle pass (its hint: no scan) | $(fmt 3 "$IDLE_PASS") s (median of 3) |")
    "${PSQL[@]}" -d "$DB" -c "CREATE INDEX cron_next_run_idx ON cron (next_run)" -c "ANALYZE cron"
    idle_passes scan
    EXTRA+=("| idle pass, $IDLE_CRONS crons, index on cron (next_run), scanning | $(fmt 3 "$IDLE_PASS") s (median of 3) |")
fi

if [ "$LIVED" != 0 ]; then
    if [ "$IDLE_CRONS" -lt "$LIVED_BACKLOG" ] || [ "$LIVED_BACKLOG" -lt $((LIVED_ROUNDS * LIVED_BURST)) ]; then
        echo "bench/run.sh: the lived scenario needs BENCH_IDLE_CRONS >= BENCH_LIVED_BACKLOG >= BENCH_LIVED_ROUNDS x BENCH_LIVED_BURST" >&2
        exit 2
    fi
    due_crons() {  # crons $1..$2 fall due now
        "${PSQL[@]}" -d "$DB" -c "UPDATE cron SET next_run = date_trunc('day', now() AT TIME ZONE 'UTC')
            WHERE id BETWEEN $1 AND $2" -c "ANALYZE cron" >/dev/null
    }
    # One burst as a midnight burst comes to a running leader: a service-mode scheduler (interval
    # 10s) on database $1, whose crons $2..$3 fall due at a 10 s boundary after an idle pass has
    # seen them not due yet (that pass keeps the idle hint and, the first time, reads the build
    # numbers ahead). Sets P_PASS (the burst pass's own time), P_CPU (the scheduler's CPU from
    # the crons' update to the burst's end) and P_RSS_MB (its peak RSS, start included).
    await_log() {  # $1 log, $2 pid, $3 seconds, $4 grep pattern, $5 what failed
        local deadline=$((SECONDS + $3))
        until grep -q "$4" "$1"; do
            if ! kill -0 "$2" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
                cat "$1" >&2; echo "bench/run.sh: $5" >&2; exit 1
            fi
            sleep 0.1
        done
    }
    svc_round() {
        local db=$1 n=$(($3 - $2 + 1)) log=$RUN/svc-$1.log pid c0 c1
        write_config 1000 "svc-$db.conf" "$log" info "$db"
        printf 'interval 10s\n' >>"$RUN/svc-$db.conf"
        : >"$log"
        "$SCHEDULER" -config "$RUN/svc-$db.conf" & pid=$!
        await_log "$log" "$pid" 300 'read ahead of the next burst\|not kept ahead' "no idle pass on $db"
        c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        "${PSQL[@]}" -d "$db" -c "UPDATE cron SET next_run = to_timestamp((floor(extract(epoch FROM now()) / 10) + 2) * 10) AT TIME ZONE 'UTC'
            WHERE id BETWEEN $2 AND $3" -c "ANALYZE cron" >/dev/null
        await_log "$log" "$pid" 600 "pass done: $n cron(s) taken" "the burst on $db did not end"
        c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        P_RSS_MB=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
        kill -TERM "$pid"
        wait "$pid" || { cat "$log" >&2; echo "bench/run.sh: the leader on $db did not stop cleanly" >&2; exit 1; }
        P_PASS=$(sed -n "s/.*pass done: $n cron(s) taken.*[, ]\([0-9.]*\) s\$/\1/p" "$log" | tail -1)
        P_CPU=$(echo "($c1 - $c0) / $HZ" | bc -l)
    }
    # The same burst on a database without history (the bursts' crons only), for the ratio:
    # LIVED_ROUNDS rounds on each, interleaved (fresh, lived; then lived, fresh; ...) so that a
    # slow minute of this shared machine hits both, each round on crons of its own, so both
    # databases pile up the same backlog. Redis is shared: the fresh database's build ids stay
    # below the lived one's.
    log "lived: seeding $IDLE_CRONS crons and $LIVED builds of history (minutes)"
    t0=$(now_s)
    reset_db "$IDLE_CRONS" false
    "${PSQL[@]}" -d "$DB" -v history="$LIVED" -v users=1000 -v crons="$IDLE_CRONS" -v cron_every=2 \
        -f "$ROOT/bench/sql/lived.sql" >/dev/null
    log "lived: seeded in $(fmt 0 "$(echo "$(now_s) - $t0" | bc -l)") s; $(row_counts)"
    FRESH=${DB}_fresh
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $FRESH" -c "CREATE DATABASE $FRESH TEMPLATE $DJINN_TEST_PGTEMPLATE" >/dev/null
    "${PSQL[@]}" -d "$FRESH" -v n=$((LIVED_ROUNDS * LIVED_BURST)) -v due=false -f "$ROOT/bench/sql/seed.sql" >/dev/null
    f_pass=() f_cpu=() f_rss=() l_pass=() l_cpu=() l_rss=()
    for ((round = 1; round <= LIVED_ROUNDS; round++)); do
        from=$(((round - 1) * LIVED_BURST + 1)) to=$((round * LIVED_BURST))
        order=(fresh lived)
        [ $((round % 2)) = 0 ] && order=(lived fresh)
        for which in "${order[@]}"; do
            log "lived: the $LIVED_BURST-cron burst in a running leader, $which database, round $round/$LIVED_ROUNDS"
            if [ "$which" = fresh ]; then
                svc_round "$FRESH" "$from" "$to"
                f_pass+=("$P_PASS") f_cpu+=("$P_CPU") f_rss+=("$P_RSS_MB")
            else
                ck0=$("${PSQL[@]}" -d postgres -Atc "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                svc_round "$DB" "$from" "$to"
                ck1=$("${PSQL[@]}" -d postgres -Atc "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                l_pass+=("$P_PASS") l_cpu+=("$P_CPU") l_rss+=("$P_RSS_MB")
                log "lived: round $round: $((ck1 - ck0)) checkpoint(s) during the lived burst"
            fi
            log "lived: round $round, $which: pass $(fmt 2 "$P_PASS") s, CPU $(fmt 2 "$P_CPU") s, RSS $P_RSS_MB MB"
        done
    done
    # Both databases: every burst's builds, numbered without a gap or a repeat after the history.
    for d in "$FRESH" "$DB"; do
        bad=$("${PSQL[@]}" -d "$d" -Atc "SELECT count(*) FROM (SELECT user_id, count(*) AS c,
            max(number) AS m, count(DISTINCT number) AS k FROM builds GROUP BY user_id) x
            WHERE c <> m OR k <> c")
        [ "$bad" = 0 ] || { echo "bench/run.sh: $d: $bad user(s) with wrong build numbers" >&2; exit 1; }
    done
    f_queued=$("${PSQL[@]}" -d "$FRESH" -Atc "SELECT count(*) FROM builds WHERE status = 'queued'")
    [ "$f_queued" = "$((LIVED_ROUNDS * LIVED_BURST))" ] || { echo "bench/run.sh: fresh bursts: $f_queued queued builds" >&2; exit 1; }
    "${PSQL[@]}" -d postgres -c "DROP DATABASE $FRESH" >/dev/null
    queued=$("${PSQL[@]}" -d "$DB" -Atc "SELECT count(*) FROM builds WHERE status = 'queued'")
    [ "$queued" = "$((LIVED_ROUNDS * LIVED_BURST))" ] || { echo "bench/run.sh: lived bursts: $queued queued builds" >&2; exit 1; }
    fresh_pass=$(median "${f_pass[@]}") lived_pass=$(median "${l_pass[@]}")
    EXTRA+=("| lived: $LIVED_BURST-cron burst in a running leader, database without history, $((LIVED_ROUNDS * LIVED_BURST)) crons (same run, interleaved; medians of $LIVED_ROUNDS: $(printf '%s ' "${f_pass[@]}")s) | $(fmt 2 "$fresh_pass") s pass, CPU $(fmt 2 "$(median "${f_cpu[@]}")") s, RSS $(maximum "${f_rss[@]}") MB |")
    EXTRA+=("| lived: $LIVED_BURST-cron burst in a running leader, $LIVED builds of history, $IDLE_CRONS crons (medians of $LIVED_ROUNDS: $(printf '%s ' "${l_pass[@]}")s) | $(fmt 2 "$lived_pass") s pass (**$(fmt 2 "$(echo "$lived_pass / $fresh_pass" | bc -l)")x** the fresh one), CPU $(fmt 2 "$(median "${l_cpu[@]}")") s, RSS $(maximum "${l_rss[@]}") MB |")
    idle_passes scan
    EXTRA+=("| lived: idle -once, $queued queued, no index, scanning cron (no idle hint) | $(fmt 3 "$IDLE_PASS") s pass, $(fmt 3 "$IDLE_WALL") s process (medians of 3), RSS $P_RSS_MB MB |")
    idle_passes hint
    EXTRA+=("| lived: idle -once, $queued queued, no index, after an idle pass (its hint: no scan) | $(fmt 3 "$IDLE_PASS") s pass, $(fmt 3 "$IDLE_WALL") s process (medians of 3), RSS $P_RSS_MB MB |")
    "${PSQL[@]}" -d "$DB" -c "CREATE INDEX cron_next_run_idx ON cron (next_run)" -c "ANALYZE cron" >/dev/null
    idle_passes scan
    EXTRA+=("| lived: idle -once, $queued queued, index on cron (next_run), scanning (no idle hint) | $(fmt 3 "$IDLE_PASS") s pass, $(fmt 3 "$IDLE_WALL") s process (medians of 3) |")
    # A first start (the switch from the original, Redis flushed): no watermark, the 7-day window.
    "${REDIS[@]}" --scan --pattern 'djinn-scheduler:watermark:*' | xargs -r "${REDIS[@]}" del >/dev/null
    run_pass 1000 debug
    EXTRA+=("| lived: first -once without a recovery watermark (the 7-day window, $queued queued) | $(fmt 3 "$P_PASS") s pass |")
    "${PSQL[@]}" -d "$DB" -c "DROP INDEX cron_next_run_idx" >/dev/null

    # The takeover with LIVED_BACKLOG queued builds: a leader and a standby (retry_interval 2s),
    # the leader killed with SIGKILL; the time to the standby's first completed pass.
    if [ "$LIVED_BACKLOG" -gt "$queued" ]; then
        log "lived: growing the backlog to $LIVED_BACKLOG queued builds"
        due_crons $((queued + 1)) "$LIVED_BACKLOG"
        run_pass 1000
    fi
    for r in a b; do
        write_config 1000 "replica-$r.conf" "$RUN/replica-$r.log" debug
        printf 'interval 5s\nleader {\n    retry_interval 2s\n}\nhttp { addr "127.0.0.1:0" }\n' >>"$RUN/replica-$r.conf"
        : >"$RUN/replica-$r.log"
    done
    "$SCHEDULER" -config "$RUN/replica-a.conf" & pid_a=$!
    for _ in $(seq 200); do grep -q 'leadership acquired' "$RUN/replica-a.log" && break; sleep 0.1; done
    "$SCHEDULER" -config "$RUN/replica-b.conf" & pid_b=$!
    # The leader's first pass done (its recovery included), the standby waiting for the lock.
    for _ in $(seq 600); do grep -q 'pass done' "$RUN/replica-a.log" && break; sleep 0.1; done
    grep -q 'pass done' "$RUN/replica-a.log" || { cat "$RUN/replica-a.log" >&2; echo "bench/run.sh: the leader never finished a pass" >&2; exit 1; }
    sleep 3
    grep -q 'leadership acquired' "$RUN/replica-b.log" && { echo "bench/run.sh: two leaders" >&2; exit 1; }
    killed_ms=$(date -u +%s%3N)
    kill -KILL "$pid_a"
    wait "$pid_a" 2>/dev/null || true
    for _ in $(seq 300); do grep -q 'pass done' "$RUN/replica-b.log" && break; sleep 0.05; done
    first=$(grep 'pass done' "$RUN/replica-b.log" | head -1 | cut -d' ' -f1 || true)
    kill -TERM "$pid_b"; wait "$pid_b" 2>/dev/null || true
    [ -n "$first" ] || { cat "$RUN/replica-b.log" >&2; echo "bench/run.sh: the standby never finished a pass" >&2; exit 1; }
    takeover=$(echo "($(date -u -d "${first%Z}Z" +%s%3N) - $killed_ms) / 1000" | bc -l)
    queued=$("${PSQL[@]}" -d "$DB" -Atc "SELECT count(*) FROM builds WHERE status = 'queued'")
    # The queue holds the jobs of the lived database's queued builds and those of the fresh one's.
    jobs=$("${REDIS[@]}" llen builds_docker:active)
    [ "$((queued + f_queued))" = "$jobs" ] || { echo "bench/run.sh: $queued + $f_queued queued builds but $jobs jobs" >&2; exit 1; }
    EXTRA+=("| lived: takeover, $queued queued builds (leader SIGKILL to the standby's first completed pass, retry_interval 2s) | $(fmt 2 "$takeover") s |")
fi

mem_gb=$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
{
    echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'): $(nproc) CPU ($cpu_model), ${mem_gb} GB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg), PostgreSQL $("${PSQL[@]}" -d postgres -Atc 'SHOW server_version'), batch_size 1000."
    echo
    echo "Medians of $REPEAT rounds per N (peak RSS: the largest); ratio = median ceiling / median pass, and the range of the rounds' own ratios."
    echo
    echo "| N | pass (s) | process wall (s) | ceiling (s) | ratio ceiling/pass | ratio, per round | builds/s | scheduler peak RSS (MB) | CPU scheduler / PostgreSQL in the pass (s) | CPU per build, scheduler / PostgreSQL (µs) | PostgreSQL CPU in the ceiling (s) | last dispatch delay (s) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    if [ ${#EXTRA[@]} -gt 0 ]; then
        echo
        echo "| other measurement | result |"
        echo "|---|---|"
        printf '%s\n' "${EXTRA[@]}"
    fi
} >"$RUN/table.md"
mkdir -p "$(dirname "$OUT")"
cp "$RUN/table.md" "$OUT"
echo
cat "$OUT"
log "written to $OUT"
