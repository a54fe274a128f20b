# shellcheck shell=bash
# Throwaway PostgreSQL 15 and Redis 7 on loopback, for tests, the demo and benchmarks.
# Source this file, then call services_start; services_stop runs from an EXIT trap.
# Exports:
#   DJINN_TEST_PGHOST DJINN_TEST_PGPORT DJINN_TEST_PGSUPERUSER  superuser access (trust on loopback)
#   DJINN_TEST_PGTEMPLATE  a database holding the Djinn v1.3.0 schema and the djinn_scheduler role's
#                          grants (plus the two sequence grants Djinn forgot unless
#                          DJINN_TEST_EXACT_ROLE=1); tests create their databases from it
#   DJINN_TEST_REDIS_HOST DJINN_TEST_REDIS_PORT DJINN_TEST_REDIS_SERVER (path of redis-server)
#   DJINN_TEST_PGBIN (PostgreSQL's bin directory) DJINN_TEST_PGDATA DJINN_TEST_RUNDIR
set -euo pipefail

services_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
    done
    echo "services.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
    return 1
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

services_start() {
    local root pgbin
    root=$(services_root)
    pgbin=$(pg_bindir)
    DJINN_TEST_RUNDIR=$(mktemp -d /tmp/djinn-services.XXXXXX)
    chmod 755 "$DJINN_TEST_RUNDIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DJINN_TEST_RUNDIR"; fi
    export DJINN_TEST_RUNDIR DJINN_TEST_PGBIN="$pgbin"
    export DJINN_TEST_PGDATA="$DJINN_TEST_RUNDIR/pgdata"
    export DJINN_TEST_PGHOST=127.0.0.1 DJINN_TEST_PGSUPERUSER=postgres
    DJINN_TEST_PGPORT=$(free_port)
    export DJINN_TEST_PGPORT

    as_postgres "$pgbin/initdb" -D "$DJINN_TEST_PGDATA" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$DJINN_TEST_RUNDIR/initdb.log" 2>&1
    # The scheduler role logs in with a password (scram), the superuser is trusted.
    cat >"$DJINN_TEST_PGDATA/pg_hba.conf" <<HBA
local all postgres trust
host  all postgres 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
HBA
    as_postgres "$pgbin/pg_ctl" -D "$DJINN_TEST_PGDATA" -l "$DJINN_TEST_RUNDIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $DJINN_TEST_PGPORT -k $DJINN_TEST_RUNDIR \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=200 ${DJINN_TEST_PGOPTS:-}" start >/dev/null

    export DJINN_TEST_REDIS_HOST=127.0.0.1 DJINN_TEST_REDIS_SERVER
    DJINN_TEST_REDIS_SERVER=$(command -v redis-server)
    DJINN_TEST_REDIS_PORT=$(free_port)
    export DJINN_TEST_REDIS_PORT
    redis-server --port "$DJINN_TEST_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$DJINN_TEST_RUNDIR/redis.pid" \
        --logfile "$DJINN_TEST_RUNDIR/redis.log" >/dev/null

    for _ in $(seq 1 50); do
        redis-cli -h 127.0.0.1 -p "$DJINN_TEST_REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done

    export DJINN_TEST_PGTEMPLATE=djinn_template
    local psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DJINN_TEST_PGPORT" -U postgres)
    "${psql[@]}" -d postgres -c "CREATE DATABASE djinn_template" >/dev/null
    "${psql[@]}" -d djinn_template -f "$root/tests/fixtures/djinn-v1.3.0-schema.sql" >/dev/null
    "${psql[@]}" -d djinn_template -v dbname=djinn_template \
        -f "$root/tests/fixtures/djinn-v1.3.0-scheduler-role.sql" >/dev/null
    if [ "${DJINN_TEST_EXACT_ROLE:-0}" != 1 ]; then
        "${psql[@]}" -d djinn_template -c \
            "GRANT USAGE ON SEQUENCE build_variables_id_seq, build_keys_id_seq TO djinn_scheduler" >/dev/null
    fi
    # Test databases are created from the template: let the scheduler connect to any of them.
    "${psql[@]}" -d postgres -c "GRANT CONNECT ON DATABASE djinn_template TO PUBLIC" >/dev/null
    trap services_stop EXIT
}

services_stop() {
    local rc=$?
    if [ -n "${DJINN_TEST_REDIS_PORT:-}" ]; then
        redis-cli -h 127.0.0.1 -p "$DJINN_TEST_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -n "${DJINN_TEST_PGDATA:-}" ] && [ -d "$DJINN_TEST_PGDATA" ]; then
        as_postgres "$DJINN_TEST_PGBIN/pg_ctl" -D "$DJINN_TEST_PGDATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -n "${DJINN_TEST_RUNDIR:-}" ] && [ "${DJINN_KEEP_SERVICES_DIR:-0}" != 1 ]; then
        rm -rf "$DJINN_TEST_RUNDIR"
    fi
    return $rc
}
