#!/usr/bin/env bash
# Runs djinn-scheduler on this machine against a throwaway PostgreSQL 15 (Djinn v1.3.0 schema,
# the djinn_scheduler role) and Redis 7, seeded with demo crons: some due now (of every kind,
# including a broken manifest, a disabled driver and a deleted owner) and some falling due in the
# next half minute. Shows the scheduler log, then the builds and queue jobs it made. Everything
# it made (services, data, config, logs) is deleted at exit, also on failure or Ctrl-C.
#   scripts/demo.sh            run for 40 seconds (DEMO_SECONDS to change; 0 = until Ctrl-C)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${DEMO_SECONDS:-40}

"$root/scripts/install-deps.sh"
build="$root/build/demo"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDJINN_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target djinn-scheduler >/dev/null

# shellcheck source=scripts/lib/services.sh
source "$root/scripts/lib/services.sh"
services_start
psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DJINN_TEST_PGPORT" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE djinn TEMPLATE djinn_template"
"${psql[@]}" -d djinn -f "$root/tests/fixtures/seed/demo.sql" >/dev/null
# Crons falling due while the demo runs.
"${psql[@]}" -d djinn -c "
INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run)
SELECT 2, 2, 'soon ' || n, 'daily',
       'driver: {type: docker, image: alpine, workspace: /src}
stages: [test]
jobs:
- stage: test
  commands: [make test]',
       (now() AT TIME ZONE 'UTC') + n * interval '10 seconds'
FROM generate_series(1, 3) AS n;"

dir=$(mktemp -d /tmp/djinn-demo.XXXXXX)
trap 'rm -rf "$dir"; services_stop' EXIT
http_port=$(free_port)
cat >"$dir/scheduler.conf" <<CONF
# Djinn's own config language; the password comes from the environment.
pidfile "$dir/scheduler.pid"
log info "/dev/stdout"
interval 10s
batch_size 1000
drivers ["docker", "qemu-x86_64",]
crypto { salt "demo-salt" }
database {
    addr "127.0.0.1:$DJINN_TEST_PGPORT"
    name "djinn"
    username "djinn_scheduler"
    password "\${DJINN_DATABASE_PASSWORD}"
}
redis { addr "127.0.0.1:$DJINN_TEST_REDIS_PORT" }
http { addr "127.0.0.1:$http_port" }
CONF

echo "demo: config $dir/scheduler.conf; metrics at http://127.0.0.1:$http_port/metrics"
echo "demo: due now: 3 good crons, a broken manifest, a disabled driver (ssh), a deleted owner;"
echo "demo: 3 more fall due in 10, 20 and 30 seconds. Running for ${seconds}s (Ctrl-C stops)."
echo
DJINN_DATABASE_PASSWORD=secret "$build/djinn-scheduler" -config "$dir/scheduler.conf" &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; }
trap 'stop; rm -rf "$dir"; services_stop' EXIT
trap 'exit 130' INT TERM
if [ "$seconds" = 0 ]; then
    wait "$pid"
else
    sleep "$seconds"
    curl -fsS "http://127.0.0.1:$http_port/metrics" 2>/dev/null |
        grep -E '^djinn_scheduler_(leader|builds_dispatched_total|crons_skipped_total)' || true
    stop
fi

echo
echo "demo: builds made by the scheduler"
"${psql[@]}" -d djinn -c "
SELECT c.name AS cron, b.id AS build, u.username || ' #' || b.number AS number,
       d.type AS driver, b.status, c.next_run AS cron_next_run
FROM cron_builds cb JOIN builds b ON b.id = cb.build_id JOIN cron c ON c.id = cb.cron_id
JOIN users u ON u.id = b.user_id JOIN build_drivers d ON d.build_id = b.id ORDER BY b.id;"
echo "demo: queue jobs"
for q in builds_docker builds_qemu-x86_64; do
    echo "  $q: $(redis-cli -p "$DJINN_TEST_REDIS_PORT" llen "$q:active") job(s)"
done
