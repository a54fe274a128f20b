#!/usr/bin/env bash
# The midnight-burst benchmark (issues 6 and 12). Usage:
#
#   bench/run.sh [N ...]          # default: 1000 10000 100000
#
# Starts its own PostgreSQL 15 and Redis (scripts/lib/services.sh), builds a Release
# djinn-scheduler, and for each N, BENCH_REPEAT rounds, each on freshly seeded databases: one
# `-once` pass per K in BENCH_SESSIONS (`dispatch_sessions K` in the config's database block;
# K=1 writes no key) over N due crons (bench/sql/seed.sql), and once the CEILING
# (bench/sql/ceiling.sql: the same rows written by PostgreSQL alone, one session), in
# alternating order between rounds (pass K=1, ceiling, pass K=2; then pass K=2, ceiling, pass
# K=1). One table row per (N, K): medians, ratio = median ceiling / median pass of that K.
# At the largest N (when it is >= 10000, or BENCH_PLOT=1), round 1 is sampled: builds committed
# every 0.25 s during each pass and the ceiling, drawn by gnuplot into
# bench/results/burst-<N>.png (the samples beside it, burst-<N>-<label>.dat).
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
# Needs bc, /usr/bin/time and, for the picture, gnuplot: missing ones are installed with
# apt-get (packages bc, time, gnuplot-nox; as root or with sudo).
#
# Environment:
#   BENCH_BUILD_DIR     build tree (default build-bench; configured Release if missing)
#   BENCH_OUT           result file (default bench/results/latest.md; the picture goes beside it)
#   BENCH_SESSIONS      the K of the passes: dispatch_sessions values, one pass each per round
#                       (default "1 2"; K=1 writes the config without the key, for binaries
#                       that do not know it)
#   BENCH_PLOT          1: sample and draw the largest N whatever its size; 0: never (default:
#                       when the largest N is at least 10000)
#   BENCH_IDLE_CRONS    crons in the table for the idle pass (default 1000000; 0 skips it)
#   BENCH_BATCH_COMPARE another batch_size, run at the largest N for information
#                       (default 5000; 0 skips it)
#   BENCH_REPEAT        rounds of (passes, ceiling) per N, medians reported (default 3)
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
read -r -a KS <<<"${BENCH_SESSIONS:-1 2}"
[ ${#KS[@]} -gt 0 ] || { echo "bench/run.sh: BENCH_SESSIONS is empty" >&2; exit 2; }
for k in "${KS[@]}"; do
    [[ $k =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: BENCH_SESSIONS: not a positive integer: $k" >&2; exit 2; }
done
[ "$(printf '%s\n' "${KS[@]}" | sort -u | wc -l)" = ${#KS[@]} ] ||
    { echo "bench/run.sh: BENCH_SESSIONS names a K twice: ${KS[*]}" >&2; exit 2; }
PLOT_N=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -1)
case ${BENCH_PLOT:-} in
    1) PLOT=1 ;;
    0) PLOT=0 ;;
    '') PLOT=$((PLOT_N >= 10000 ? 1 : 0)) ;;
    *) echo "bench/run.sh: BENCH_PLOT must be 0 or 1" >&2; exit 2 ;;
esac

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- dependencies ------------------------------------------------------------------------------
missing=()
command -v bc >/dev/null || missing+=(bc)
[ -x /usr/bin/time ] || missing+=(time)
if [ "$PLOT" = 1 ] && ! command -v gnuplot >/dev/null; then missing+=(gnuplot-nox); fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    sudo=()
    if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
    apt_install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")
    "${apt_install[@]}" >/dev/null 2>&1 || { "${sudo[@]}" apt-get update -qq && "${apt_install[@]}" >/dev/null; } ||
        { echo "bench/run.sh: could not install ${missing[*]}" >&2; exit 1; }
fi

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
# live children (backends, checkpointer, autovacuum ...), from /proc; but for the backend of a
# running sampler (below), whose CPU is the picture's, not the pass's.
pg_cpu() {
    local pm
    pm=$(head -1 "$DJINN_TEST_PGDATA/postmaster.pid")
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" -v hz="$HZ" -v skip="${SAMPLER_BACKEND:-0}" '
        { pid = $1; sub(/^.*\) /, "")
          # after "comm) ": $2 ppid, $12 utime, $13 stime, $14 cutime, $15 cstime
          if (pid == pm) t += $12 + $13 + $14 + $15; else if ($2 == pm && pid != skip) t += $12 + $13 }
        END { printf "%.2f", t / hz }'
}

# The sampler for the picture: one psql session that counts the builds committed, every 0.25 s
# (\watch), with the server's clock. It counts cron_builds, one narrow row per build, written in
# the build's transaction (the bench's builds are all cron builds): the same count as builds
# without reading the manifests. Sets SAMPLER_PID and SAMPLER_BACKEND (its backend's pid).
SAMPLER_PID='' SAMPLER_BACKEND=''
start_sampler() {
    SAMPLER_RAW=$RUN/sampler.raw
    : >"$SAMPLER_RAW"
    "${PSQL[@]}" -d "$DB" -At -F ' ' >"$SAMPLER_RAW" 2>"$RUN/sampler.err" <<'SQL' &
SELECT pg_backend_pid();
SELECT extract(epoch FROM clock_timestamp()), count(*) FROM cron_builds \watch 0.25
SQL
    SAMPLER_PID=$!
    local _
    for _ in $(seq 100); do [ "$(wc -l <"$SAMPLER_RAW")" -ge 2 ] && break; sleep 0.1; done
    [ "$(wc -l <"$SAMPLER_RAW")" -ge 2 ] ||
        { cat "$RUN/sampler.err" >&2; echo "bench/run.sh: the sampler did not start" >&2; exit 1; }
    SAMPLER_BACKEND=$(head -1 "$SAMPLER_RAW")
}
# $1 the run's start, $2 its end (epoch seconds), $3 builds committed at its end, $4 .dat file,
# $5 what was sampled: the samples as "seconds_since_start count", from (0, 0) to ($2, $3).
stop_sampler() {
    kill -TERM "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID='' SAMPLER_BACKEND=''
    {
        echo "# $5"
        echo "# seconds since the start, builds committed (count(*) FROM cron_builds every 0.25 s; first and last line: the start and the end)"
        echo "0.000 0"
        awk -v t0="$1" 'NR > 1 && $1 >= t0 { printf "%.3f %d\n", $1 - t0, $2 }' "$SAMPLER_RAW"
        printf '%.3f %d\n' "$(echo "$2 - $1" | bc -l)" "$3"
    } >"$4"
}
on_exit() {  # services_stop's trap, the sampler stopped first; services_stop reads the exit status
    local rc=$?
    set +e
    if [ -n "$SAMPLER_PID" ]; then kill -TERM "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; fi
    (exit "$rc")
    services_stop
}
trap on_exit EXIT

reset_db() {  # fresh database from the Djinn template, seeded with $1 crons (due: $2), empty Redis
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB TEMPLATE $DJINN_TEST_PGTEMPLATE"
    "${REDIS[@]}" flushall >/dev/null
    "${PSQL[@]}" -d "$DB" -v n="$1" -v due="$2" -f "$ROOT/bench/sql/seed.sql" >/dev/null
}

write_config() {  # $1 batch_size [$2 file, default scheduler.conf] [$3 log file] [$4 log level] [$5 database, default $DB] [$6 dispatch_sessions, default 1: no key]
    local sessions=
    if [ "${6:-1}" != 1 ]; then sessions="    dispatch_sessions $6"$'\n'; fi
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
${sessions}}
redis { addr "$DJINN_TEST_REDIS_HOST:$DJINN_TEST_REDIS_PORT" }
CONF
}

# One -once pass. Sets: P_T0 P_T1 (its start and end, epoch s) P_WALL P_PASS P_RSS_MB P_CPU
# P_PGCPU P_DELAY (all strings).
run_pass() {  # $1 batch_size [$2 log level] [$3 dispatch_sessions, default 1]
    local k=${3:-1}
    write_config "$1" scheduler.conf "$RUN/scheduler.log" "${2:-info}" "$DB" "$k"
    : >"$RUN/scheduler.log"
    local pg0 pg1 t0 t1 start_ms last rc=0
    pg0=$(pg_cpu)
    t0=$(now_s)
    /usr/bin/time -v -o "$RUN/time.txt" "$SCHEDULER" -config "$RUN/scheduler.conf" -once \
        2>"$RUN/scheduler.err" || rc=$?
    t1=$(now_s)
    pg1=$(pg_cpu)
    if [ "$rc" != 0 ]; then
        echo "bench/run.sh: the pass with dispatch_sessions $k (K=$k, batch_size $1) failed, exit status $rc; the scheduler said:" >&2
        sed 's/^/    /' "$RUN/scheduler.err" >&2
        if [ -s "$RUN/scheduler.log" ]; then
            echo "  the end of its log:" >&2
            tail -20 "$RUN/scheduler.log" | sed 's/^/    /' >&2
        fi
        exit 1
    fi
    if [ -s "$RUN/scheduler.err" ]; then cat "$RUN/scheduler.err" >&2; fi
    P_T0=$t0 P_T1=$t1
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

# Each K's config must load before the rounds start: a binary without the dispatch_sessions key
# rejects K > 1 here, not after the seeding.
for k in "${KS[@]}"; do
    write_config 1000 "check-k$k.conf" "$RUN/check.log" info "$DB" "$k"
    if ! "$SCHEDULER" -config "$RUN/check-k$k.conf" -check-config >/dev/null 2>"$RUN/check.err"; then
        echo "bench/run.sh: BENCH_SESSIONS: K=$k: $SCHEDULER rejects the config with dispatch_sessions $k:" >&2
        sed 's/^/    /' "$RUN/check.err" >&2
        echo "  (a binary that does not know the key? BENCH_SESSIONS=1 runs without it)" >&2
        exit 1
    fi
done

# The per-round values of one (N, K), in round order: $1 associative array (keys "K,round"), $2 K.
rounds_of() {
    local -n values=$1
    local r
    for ((r = 1; r <= REPEAT; r++)); do printf '%s\n' "${values[$2,$r]}"; done
}
median_of() { rounds_of "$1" "$2" | sort -g | awk '{v[NR] = $1} END {m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2}'; }

# The picture: $1 N, $2 round, then "label|title" per .dat file (burst-N-label.dat).
draw_plot() {
    local n=$1 round=$2 png plots=() spec term
    shift 2
    png=$RESULTS/burst-$n.png
    for spec in "$@"; do
        plots+=("'$RESULTS/burst-$n-${spec%%|*}.dat' using 1:2 with steps linewidth 2 title '${spec#*|}'")
    done
    if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
        term="pngcairo size 1100,650 noenhanced font 'sans,11'"
    else
        term="png size 1100,650 noenhanced"
    fi
    gnuplot <<GP
set terminal $term
set output '$png'
set title "The midnight burst: N = $n due crons, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (round $round of $REPEAT)"
set xlabel 'seconds since the start (of the scheduler process; of psql for the ceiling)'
set ylabel 'builds committed'
set yrange [0:$((n + n / 20))]
set xrange [0:*]
set format y '%.0f'
set grid
set key left top opaque
plot $(IFS=,; echo "${plots[*]}")
GP
    PICTURE=$png
    log "N=$n: picture $png"
}

RESULTS=$(dirname "$OUT")
mkdir -p "$RESULTS"
PICTURE=
ROWS=()
EXTRA=()
for n in "${SIZES[@]}"; do
    # REPEAT rounds, each run on a freshly seeded database: a pass per K and the ceiling, in
    # alternating order (the ceiling in the middle; reversed every other round) so that a slow
    # minute of this shared machine hits all of them; the table shows medians.
    declare -A A_PASS=() A_WALL=() A_RSS=() A_CPU=() A_PG=() A_DELAY=() A_RATIO=() COUNTS=()
    C_TIME=() C_PG=()
    sample_round=0
    if [ "$PLOT" = 1 ] && [ "$n" = "$PLOT_N" ] && [ -z "$PICTURE" ]; then sample_round=1; fi
    half=$(((${#KS[@]} + 1) / 2))
    order=("${KS[@]:0:half}" ceiling "${KS[@]:half}")
    for ((round = 1; round <= REPEAT; round++)); do
        runs=("${order[@]}")
        if [ $((round % 2)) = 0 ]; then
            runs=()
            for ((i = ${#order[@]} - 1; i >= 0; i--)); do runs+=("${order[i]}"); done
        fi
        sampled=
        [ "$round" = "$sample_round" ] && sampled=", sampled for the picture"
        for run in "${runs[@]}"; do
            if [ "$run" = ceiling ]; then
                log "N=$n, round $round/$REPEAT: seeding, ceiling$sampled"
                label=ceiling
            else
                log "N=$n, round $round/$REPEAT: seeding, scheduler pass, dispatch_sessions $run$sampled"
                label=pass-k$run
            fi
            reset_db "$n" true
            if [ -n "$sampled" ]; then start_sampler; fi
            if [ "$run" = ceiling ]; then
                pg0=$(pg_cpu)
                t0=$(now_s)
                c_time=$("${PSQL[@]}" -d "$DB" -At -v n="$n" -f "$ROOT/bench/sql/ceiling.sql" | tail -1)
                t1=$(now_s)
                pg1=$(pg_cpu)
                C_TIME[round]=$c_time
                C_PG[round]=$(echo "$pg1 - $pg0" | bc -l)
                if [ -n "$sampled" ]; then
                    stop_sampler "$t0" "$t1" "$n" "$RESULTS/burst-$n-$label.dat" \
                        "N=$n, the ceiling (bench/sql/ceiling.sql, one transaction), round $round, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
                fi
            else
                run_pass 1000 info "$run"
                if [ -n "$sampled" ]; then
                    stop_sampler "$P_T0" "$P_T1" "$n" "$RESULTS/burst-$n-$label.dat" \
                        "N=$n, -once pass with dispatch_sessions $run (batch_size 1000), round $round, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
                fi
                check_rows "$n"
                # shellcheck disable=SC2034 # read through rounds_of's nameref
                A_PASS[$run,$round]=$P_PASS A_WALL[$run,$round]=$P_WALL A_RSS[$run,$round]=$P_RSS_MB
                # shellcheck disable=SC2034
                A_CPU[$run,$round]=$P_CPU A_PG[$run,$round]=$P_PGCPU A_DELAY[$run,$round]=${P_DELAY:-0}
                log "N=$n, round $round/$REPEAT, K=$run: pass $(fmt 2 "$P_PASS") s, RSS $P_RSS_MB MB"
            fi
            COUNTS[$run]=$(row_counts)
        done
        for k in "${KS[@]}"; do
            if [ "${COUNTS[$k]}" != "${COUNTS[ceiling]}" ]; then
                echo "bench/run.sh: the ceiling wrote other rows than the pass with dispatch_sessions $k:" >&2
                echo "  pass:    ${COUNTS[$k]}" >&2
                echo "  ceiling: ${COUNTS[ceiling]}" >&2
                exit 1
            fi
            A_RATIO[$k,$round]=$(echo "${C_TIME[round]} / ${A_PASS[$k,$round]}" | bc -l)
            log "N=$n, round $round/$REPEAT, K=$k: pass $(fmt 2 "${A_PASS[$k,$round]}") s, ceiling $(fmt 2 "${C_TIME[round]}") s, ratio $(fmt 2 "${A_RATIO[$k,$round]}")"
        done
    done
    c_time=$(median "${C_TIME[@]}")
    c_pg=$(median "${C_PG[@]}")
    for k in "${KS[@]}"; do
        s_pass=$(median_of A_PASS "$k")
        ratio=$(echo "$c_time / $s_pass" | bc -l)
        per_round=$(rounds_of A_RATIO "$k" | while read -r r; do fmt 2 "$r"; echo; done | paste -sd' ')
        cpu=$(median_of A_CPU "$k") pg=$(median_of A_PG "$k")
        ROWS+=("| $n | $k | $(fmt 2 "$s_pass") | $(fmt 2 "$(median_of A_WALL "$k")") | $(fmt 2 "$c_time") | **$(fmt 2 "$ratio")** | $per_round | $(fmt 0 "$(echo "$n / $s_pass" | bc -l)") | $(rounds_of A_RSS "$k" | sort -g | tail -1) | $(fmt 2 "$cpu") / $(fmt 2 "$pg") | $(fmt 0 "$(echo "$cpu * 1000000 / $n" | bc -l)") / $(fmt 0 "$(echo "$pg * 1000000 / $n" | bc -l)") | $(fmt 2 "$c_pg") | $(fmt 0 "$(echo "$c_pg * 1000000 / $n" | bc -l)") | $(fmt 2 "$(median_of A_DELAY "$k")") |")
        log "N=$n, K=$k: median pass $(fmt 2 "$s_pass") s, median ceiling $(fmt 2 "$c_time") s, ratio $(fmt 2 "$ratio") (rounds: $per_round)"
    done
    log "N=$n: rows ${COUNTS[ceiling]}"
    if [ "$sample_round" = 1 ]; then
        specs=()
        for k in "${KS[@]}"; do
            if [ "$k" = 1 ]; then specs+=("pass-k1|pass, 1 session (no dispatch_sessions key)"); else specs+=("pass-k$k|pass, dispatch_sessions $k"); fi
        done
        specs+=("ceiling|ceiling (bench/sql/ceiling.sql: one session, one transaction)")
        draw_plot "$n" "$sample_round" "${specs[@]}"
    fi
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
    echo "One row per (N, K), K = dispatch_sessions of the pass (K=1: no key in the config). Medians of $REPEAT rounds (peak RSS: the largest); the ceiling (one session) is measured once per round, the same for every K of its N; ratio = median ceiling / median pass of that K, then the rounds' own ratios in round order."
    if [ -n "$PICTURE" ]; then
        echo "Round 1 at N=$PLOT_N was sampled for the picture (count(*) FROM cron_builds every 0.25 s in one more psql session, whose backend's CPU is left out of the PostgreSQL CPU): \`${PICTURE#"$ROOT"/}\`."
    fi
    echo
    echo "| N | K | pass (s) | process wall (s) | ceiling (s) | ratio ceiling/pass | ratio, per round | builds/s | scheduler peak RSS (MB) | CPU scheduler / PostgreSQL in the pass (s) | CPU per build, scheduler / PostgreSQL (µs) | PostgreSQL CPU in the ceiling (s) | PostgreSQL CPU per build in the ceiling (µs) | last dispatch delay (s) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    if [ ${#EXTRA[@]} -gt 0 ]; then
        echo
        echo "| other measurement | result |"
        echo "|---|---|"
        printf '%s\n' "${EXTRA[@]}"
    fi
} >"$RUN/table.md"
cp "$RUN/table.md" "$OUT"
echo
cat "$OUT"
log "written to $OUT"
if [ -n "$PICTURE" ]; then log "picture: $PICTURE (samples: $(dirname "$PICTURE")/burst-$PLOT_N-*.dat)"; fi
