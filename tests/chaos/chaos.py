#!/usr/bin/env python3
"""Fault-injection harness for djinn-scheduler (run through tests/chaos/run.sh).

Runs 3 replicas against the PostgreSQL and Redis started by scripts/lib/services.sh (the
DJINN_TEST_* environment), makes crons fall due continuously, injects faults at seeded moments
and checks, from the database and the queues, that every due (cron, scheduled time) got exactly
one build and one queue job. Python 3 standard library only; psql for SQL, a small RESP client
for Redis. Everything listens on 127.0.0.1, and, for the `partition` fault, on the host end of a
veth pair whose other end is in replica c's own network namespace (tests/chaos/partition.py,
created by run.sh).

How a due (cron, scheduled time) is known: the harness records it in its own table chaos_due in
the same transaction that makes the cron due (an INSERT of a new cron, or an UPDATE that rewinds
an already dispatched daily cron to now). A psql call cut by a fault therefore records exactly
what it committed, and the expected build count of a cron is its number of chaos_due rows.
"""

import argparse
import datetime as dt
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import partition as net
import pooler

ENV = os.environ
RUNDIR = ENV["DJINN_TEST_RUNDIR"]
PGHOST = ENV["DJINN_TEST_PGHOST"]
PGPORT = ENV["DJINN_TEST_PGPORT"]
PGBIN = ENV["DJINN_TEST_PGBIN"]
PGDATA = ENV["DJINN_TEST_PGDATA"]
TEMPLATE = ENV["DJINN_TEST_PGTEMPLATE"]
REDIS_PORT = int(ENV["DJINN_TEST_REDIS_PORT"])
REDIS_SERVER = ENV["DJINN_TEST_REDIS_SERVER"]
DB = "chaos"
REPLICAS = ("a", "b", "c")
INTERVAL_S = 2
LOCK_TIMEOUT_S = 4
RETRY_S = 1
DRAIN_S = 10
BATCH_SIZE = 20
# database.dispatch_sessions (--dispatch-sessions): a line of the replicas' database block.
DISPATCH_SESSIONS_LINE = ""
USERS = 5
GOOD_MANIFEST = ("driver: {type: docker, image: alpine, workspace: /src}\n"
                 "stages: [test]\njobs:\n- stage: test\n  commands: [make]")
BAD_MANIFEST = "driver: [unclosed\njobs: {"
POOLER_FAULTS = ("pgbouncer_restart", "pgbouncer_pause", "pgbouncer_suspend")
ALL_FAULTS = ("kill9", "sigterm", "pg_terminate", "pg_restart", "redis_pause", "redis_restart",
              "freeze", "partition") + POOLER_FAULTS + ("pg_failover",)
FAULTS = ALL_FAULTS  # the ones this run injects: set in main() (--faults, what is available)
# --lived: the history loaded before the replicas start (bench/sql/lived.sql). Every check reads
# only what the run made: builds above LIVED_BUILDS, crons above LIVED_CRONS; the build numbers of
# a user continue after their history (chaos_history).
LIVED_BUILDS = 0
LIVED_CRONS = 0
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# PgBouncer (tests/chaos/pooler.py) in front of PostgreSQL, session pooling, md5: replicas
# POOLED connect through it, the others directly (replica c, the partitioned one, among them).
# Set in main(): empty when PgBouncer is missing or --direct is given.
POOLED = ()
POOLER_SKIP = ""
# The pg_failover fault: a streaming standby of the harness's PostgreSQL; the direct replicas
# list both (database.addr "primary,standby"), PgBouncer is repointed at the promoted one.
FAILOVER_SKIP = ""  # set in main()
STANDBY = None  # the PgCluster that pg_failover promotes next
# A role that only logs in through PgBouncer to see whether a new login gets through (a paused
# or suspended pool); it owns nothing and writes nothing.
PROBE_ROLE = "chaos_probe"

# The partition fault: replica PART_REPLICA runs in the network namespace run.sh made
# (partition.py up); it reaches PostgreSQL and Redis at NET_HOST_ADDR over the veth pair.
NETNS = ENV.get("DJINN_CHAOS_NETNS", "")
NET_HOST_IF = ENV.get("DJINN_CHAOS_NET_HOST_IF", "")
NET_NS_IF = ENV.get("DJINN_CHAOS_NET_NS_IF", "")
NET_HOST_ADDR = ENV.get("DJINN_CHAOS_NET_HOST_ADDR", "")
NET_NS_ADDR = ENV.get("DJINN_CHAOS_NET_NS_ADDR", "")
NET_SUBNET = ENV.get("DJINN_CHAOS_NET_SUBNET", "")
PARTITION_SKIP = ENV.get("DJINN_CHAOS_PARTITION_SKIP", "" if NETNS else
                         "no network namespace (run the harness through tests/chaos/run.sh)")
PART_REPLICA = "c"
# A commit of the partitioned replica this long after the cut counts as after it: a COMMIT it
# sent just before the cut may still be executed by the server a moment later.
CUT_GRACE_S = 0.5

LEADER_KEY = 0x646A696E6E736368  # the scheduler's default leader.key ("djinnsch")
# The leader lock in pg_locks (a bigint key: classid and objid are its halves, objsubid 1), and
# only it: not the transaction-level locks a batch takes (the numbering lock, and the dispatch
# fence that each dispatch session holds while it writes).
LEADER_LOCK_WHERE = ("l.locktype = 'advisory' AND l.granted AND "
                     f"l.classid = {LEADER_KEY >> 32} AND l.objid = {LEADER_KEY & 0xFFFFFFFF} "
                     "AND l.objsubid = 1 AND "
                     "l.database = (SELECT oid FROM pg_database WHERE datname = "
                     "current_database())")
# The lock holder's backend and role, as one text value ('' if none).
LOCK_SQL = ("SELECT l.pid || ' ' || a.usename FROM pg_locks l JOIN pg_stat_activity a "
            f"USING (pid) WHERE {LEADER_LOCK_WHERE} LIMIT 1")

T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def utc(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def fmt_s(x):
    return "?" if x is None else f"{x:.2f}s"


def log_time(line):
    """The time (epoch seconds) of one JSON log line of a replica."""
    try:
        t = json.loads(line)["time"]
        return dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.timezone.utc).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


def json_msg(line):
    try:
        return json.loads(line)["msg"]
    except (ValueError, KeyError, TypeError):
        return line.strip()


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: the harness stops, cleans up and exits 2."""


class HarnessError(Exception):
    pass


# --------------------------------------------------------------------------- PostgreSQL (psql)

class PgCluster:
    """One PostgreSQL cluster of the harness: the primary services.sh started, or a streaming
    standby made by pg_basebackup (the pg_failover fault). PG is the one the harness and the
    replicas write to now; every cluster's log is read for the statement log."""

    def __init__(self, data, port, log_path):
        self.data, self.port, self.log = data, str(port), log_path

    def pg_ctl(self, *args, timeout=120):
        cmd = as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.data] + list(args))
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def start_options(self, template):
        """The options the primary was started with (its postmaster.opts: what services.sh and
        run.sh passed), with this cluster's port and socket directory."""
        with open(os.path.join(template.data, "postmaster.opts"), encoding="utf-8") as f:
            argv = shlex.split(f.read())[1:]
        out, i = [], 0
        while i < len(argv):
            if argv[i] in ("-D", "-p", "-k"):
                i += 2
                continue
            out.append(argv[i])
            i += 1
        return shlex.join(out + ["-p", self.port, "-k", RUNDIR])

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))


PG = PgCluster(PGDATA, PGPORT, os.path.join(RUNDIR, "postgres.log"))
PG_LOGS = [PG.log]  # every cluster's log, oldest first


def psql(sql, db=DB, timeout=300, check=True):
    """Runs SQL as the superuser; returns rows as lists of strings (unaligned, tab-separated)."""
    env = dict(ENV, PGOPTIONS="-c TimeZone=UTC", PGCONNECT_TIMEOUT="3")
    try:
        return _psql(sql, db, timeout, check, env)
    except subprocess.TimeoutExpired as e:
        if check:
            raise HarnessError(f"psql timed out after {timeout}s: {sql.strip()[:200]}") from e
        raise


def _psql(sql, db, timeout, check, env, port=None):
    p = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", PGHOST,
         "-p", port or PG.port, "-U", "postgres", "-d", db, "-c", sql],
        capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if p.returncode != 0:
        if check:
            raise HarnessError(f"psql failed ({p.returncode}): {p.stderr.strip()[:400]}")
        return None
    return [line.split("\t") for line in p.stdout.splitlines() if line != ""]


def psql_try(sql, timeout=10):
    try:
        return psql(sql, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None


def psql_on(cluster, sql, timeout=10):
    """SQL on a given cluster (not necessarily the current primary); rows, or None."""
    env = dict(ENV, PGOPTIONS="-c TimeZone=UTC", PGCONNECT_TIMEOUT="3")
    try:
        return _psql(sql, DB, timeout, False, env, cluster.port)
    except subprocess.TimeoutExpired:
        return None


def scalar(sql):
    return psql(sql)[0][0]


def as_postgres(cmd):
    return (["runuser", "-u", "postgres", "--"] + cmd) if os.geteuid() == 0 else cmd


# --------------------------------------------------------------------------- Redis (RESP)

class Redis:
    def __init__(self, port=REDIS_PORT, timeout=3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise HarnessError("redis error: " + rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise HarnessError(f"redis: unexpected reply {line[:40]!r}")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._reply()


def redis_try(*args, timeout=1.0):
    try:
        r = Redis(timeout=timeout)
        try:
            return r.cmd(*args)
        finally:
            r.close()
    except (OSError, HarnessError):
        return None


class RedisServer:
    """Our own redis-server (not daemonized) with an append-only file fsynced on every write, so
    a restart (even kill -9) keeps every job it acknowledged: losing Redis data would lose
    queued jobs of any producer, which is outside what a scheduler can guarantee."""

    def __init__(self):
        self.dir = os.path.join(RUNDIR, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        logf = open(os.path.join(RUNDIR, "redis-chaos.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(REDIS_PORT), "--bind", "127.0.0.1"]
            # The partitioned replica connects from its namespace: not from loopback, so
            # protected mode (no password) would refuse it. Only loopback and the private veth
            # pair are bound.
            + ([NET_HOST_ADDR, "--protected-mode", "no"] if NETNS else []) + [
                "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                "--daemonize", "no"], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if redis_try("PING") == b"PONG":
                return
            time.sleep(0.05)
        raise HarnessError("redis-server did not start")

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# --------------------------------------------------------------------------- replicas

class Replica:
    def __init__(self, name, binary, rundir, netns="", db_addr=""):
        self.name = name
        self.role = "chaos_" + name
        self.binary = binary
        self.rundir = rundir
        # In its own network namespace, the replica reaches the services at the host end of the
        # veth pair and serves its metrics on its own end.
        self.netns = netns
        self.http_host = NET_NS_ADDR if netns else "127.0.0.1"
        services = NET_HOST_ADDR if netns else "127.0.0.1"
        # Directly to PostgreSQL, or (db_addr) through PgBouncer.
        self.pooled = bool(db_addr)
        host = NET_HOST_ADDR if netns else PGHOST
        db_addr = db_addr or ",".join(f"{host}:{c.port}" for c in
                                      ([PG, STANDBY] if STANDBY is not None else [PG]))
        self.conf = os.path.join(rundir, f"{name}.conf")
        self.proc = None
        self.incarnation = 0
        self.logs = []
        self.expected_exit = False
        self.unexpected_exits = []
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(f"""pidfile "{rundir}/{name}.pid"
log info "/dev/stdout"
log_format "json"
interval {INTERVAL_S}s
batch_size {BATCH_SIZE}
drivers ["docker",]
crypto {{
    salt "1a2b3c4d5e6f7g8h"
}}
database {{
    addr "{db_addr}"
    name "{DB}"
    username "{self.role}"
    password "secret"{DISPATCH_SESSIONS_LINE}
}}
redis {{
    addr "{services}:{REDIS_PORT}"
}}
http {{
    addr "{self.http_host}:0"
}}
leader {{
    retry_interval {RETRY_S}s
    lock_timeout {LOCK_TIMEOUT_S}s
}}
drain_timeout {DRAIN_S}s
""")

    @property
    def log_path(self):
        return self.logs[-1]

    def start(self):
        self.incarnation += 1
        path = os.path.join(self.rundir, f"{self.name}.{self.incarnation}.log")
        self.logs.append(path)
        # `ip netns exec` execs the binary in the namespace: the pid is the scheduler's.
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        with open(path, "ab") as out:
            self.proc = subprocess.Popen(prefix + [self.binary, "-config", self.conf],
                                         stdout=out, stderr=subprocess.STDOUT)
        self.expected_exit = False

    def alive(self):
        if self.proc is None:
            return False
        rc = self.proc.poll()
        if rc is not None and not self.expected_exit:
            self.unexpected_exits.append((self.incarnation, rc))
            self.expected_exit = True
        return rc is None

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def output(self):
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def port(self):
        m = re.search(r"serving /healthz /readyz /metrics on port (\d+)", self.output())
        return int(m.group(1)) if m else 0

    def metric(self, name, timeout=0.5):
        port = self.port()
        if not port:
            return None
        try:
            with socket.create_connection((self.http_host, port), timeout=timeout) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None
        for line in data.decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.expected_exit = True
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(DRAIN_S + 5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# --------------------------------------------------------------------------- workload

class Workload(threading.Thread):
    """Every second a few new crons fall due (about 5% with a manifest that does not parse: they
    must be skipped and advanced, never built); every few seconds some already dispatched daily
    crons are rewound to now, making them due again. Both are recorded in chaos_due in the same
    transaction."""

    def __init__(self, rng):
        super().__init__(daemon=True)
        self.rng = rng
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.inserted = 0
        self.rewound = 0
        self.failed_calls = 0

    def insert(self, n, within_s, tag):
        vals = []
        for _ in range(n):
            bad = self.rng.random() < 0.05
            user = self.rng.randint(1, USERS)
            secs = self.rng.uniform(0, within_s)
            vals.append(f"({user}, {'true' if bad else 'false'}, {secs:.3f})")
        sql = f"""
WITH src(user_id, bad, secs) AS (VALUES {", ".join(vals)}),
ins AS (
  INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run)
  SELECT user_id, user_id, '{tag} ' || md5(random()::text), 'daily',
         CASE WHEN bad THEN $m${BAD_MANIFEST}$m$ ELSE $m${GOOD_MANIFEST}$m$ END,
         now()::timestamp + make_interval(secs => secs)
  FROM src RETURNING id, next_run, manifest)
INSERT INTO chaos_due (cron_id, scheduled, bad, origin)
SELECT id, next_run, manifest = $m${BAD_MANIFEST}$m$, '{tag}' FROM ins"""
        if psql_try(sql) is None:
            self.failed_calls += 1
            return 0
        with self.lock:
            self.inserted += n
        return n

    def rewind(self, n):
        sql = f"""
WITH pick AS (
  SELECT id FROM cron
  WHERE next_run > now()::timestamp + interval '1 hour' AND prev_run IS NOT NULL
  ORDER BY random() LIMIT {n}),
r AS (
  UPDATE cron c SET next_run = now()::timestamp - make_interval(secs => random() * 2)
  FROM pick WHERE c.id = pick.id AND c.next_run > now()::timestamp
  RETURNING c.id, c.next_run, c.manifest)
INSERT INTO chaos_due (cron_id, scheduled, bad, origin)
SELECT id, next_run, manifest = $m${BAD_MANIFEST}$m$, 'rewind' FROM r RETURNING cron_id"""
        rows = psql_try(sql)
        if rows is None:
            self.failed_calls += 1
            return
        with self.lock:
            self.rewound += len(rows)

    def run(self):
        tick = 0
        while not self.stop_flag.is_set():
            started = time.time()
            self.insert(self.rng.randint(2, 5), 1.0, "steady")
            if tick % 5 == 4:
                self.rewind(self.rng.randint(1, 4))
            tick += 1
            self.stop_flag.wait(max(0.0, 1.0 - (time.time() - started)))


# --------------------------------------------------------------------------- the harness

class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.redis = RedisServer()
        self.replicas = {}
        self.faults = []
        self.violations = []
        self.freezes = []
        self.partitions = []
        self.cut_active = False
        # PgBouncer faults whose leader may have lost its session: checked for fencing at the end
        # (check_isolations), like the partitions.
        self.isolations = []
        self.bouncer = None
        self.bouncer_admin = None  # an AdminSession that suspended PgBouncer, until RESUME
        self.bouncer_paused = False
        self.kind_count = {}
        self.measurements = []  # background threads measuring a fault's aftermath
        self.standby_thread = None  # rebuilding the standby after a pg_failover
        self.standby_error = None

    # ---- setup

    def load_history(self, builds):
        """A database that has lived: `builds` finished builds of the past year over the USERS
        users, half of them cron builds of `builds // 10` crons that are not due again within the
        run (next_run a week ahead, never run: the rewinds leave them alone)."""
        global LIVED_BUILDS, LIVED_CRONS  # pylint: disable=global-statement
        crons = max(builds // 10, 1)
        t0 = time.time()
        psql(f"""
INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run)
SELECT 1 + (i - 1) % {USERS}, 1 + (i - 1) % {USERS}, 'history ' || i, 'weekly',
       $m${GOOD_MANIFEST}$m$, now()::timestamp + interval '7 days'
FROM generate_series(1, {crons}) AS i""", timeout=600)
        p = subprocess.run(["psql", "-X", "-q", "-h", PGHOST, "-p", PG.port, "-U", "postgres",
                            "-d", DB, "-v", f"history={builds}", "-v", f"users={USERS}", "-v",
                            f"crons={crons}", "-v", "cron_every=2",
                            "-f", os.path.join(ROOT, "bench", "sql", "lived.sql")],
                           capture_output=True, text=True, timeout=3600, check=False)
        if p.returncode != 0:
            raise HarnessError(f"loading the history failed: {p.stderr.strip()[:400]}")
        LIVED_BUILDS = int(scalar("SELECT coalesce(max(id), 0) FROM builds"))
        LIVED_CRONS = int(scalar("SELECT coalesce(max(id), 0) FROM cron"))
        log(f"lived database: {LIVED_BUILDS} builds of history, {LIVED_CRONS} crons not due, "
            f"loaded in {time.time() - t0:.0f}s")

    def setup(self):
        global STANDBY  # pylint: disable=global-statement
        # PostgreSQL: every statement that writes is logged with its role, backend and time (UTC),
        # so the writes of each replica (one role per replica) can be checked after the run.
        psql("ALTER SYSTEM SET log_line_prefix = '%m [%p] %u '", db="postgres")
        psql("ALTER SYSTEM SET log_timezone = 'UTC'", db="postgres")
        psql("ALTER SYSTEM SET log_statement = 'mod'", db="postgres")
        # The parameters of each INSERT INTO builds (the build ids) say which backend wrote
        # which build: in full.
        psql("ALTER SYSTEM SET log_parameter_max_length = -1", db="postgres")
        if NETNS:
            # The partitioned replica logs in from its namespace's address.
            with open(os.path.join(PGDATA, "pg_hba.conf"), "a", encoding="utf-8") as f:
                f.write(f"host  all all {NET_SUBNET} scram-sha-256\n")
        if "pg_failover" in FAULTS:
            # pg_basebackup and the standby's WAL stream (the pg_hba.conf is copied with it).
            with open(os.path.join(PGDATA, "pg_hba.conf"), "a", encoding="utf-8") as f:
                f.write("host  replication postgres 127.0.0.1/32 trust\n")
        psql("SELECT pg_reload_conf()", db="postgres")
        if ("partition" in FAULTS or set(POOLER_FAULTS) & set(FAULTS)) and \
                psql("SHOW track_commit_timestamp", db="postgres")[0][0] != "on":
            raise HarnessError("track_commit_timestamp is off: the partition and PgBouncer "
                               "faults check when builds committed (run.sh sets it)")
        if "partition" in FAULTS:
            listen = psql("SHOW listen_addresses", db="postgres")[0][0]
            if NET_HOST_ADDR not in listen.split(","):
                raise HarnessError(f"PostgreSQL listens on {listen!r}, not on {NET_HOST_ADDR}: "
                                   f"start it with -c listen_addresses=127.0.0.1,{NET_HOST_ADDR}"
                                   f" (run.sh does, through DJINN_TEST_PGOPTS)")
        psql(f"CREATE DATABASE {DB} TEMPLATE {TEMPLATE}", db="postgres")
        # One login role per replica, member of Djinn's djinn_scheduler role (same privileges):
        # the PostgreSQL log then says which replica wrote what.
        for name in REPLICAS:
            psql(f"DO $$BEGIN CREATE ROLE chaos_{name} LOGIN PASSWORD 'secret' IN ROLE "
                 f"djinn_scheduler; EXCEPTION WHEN duplicate_object THEN NULL; END$$", db="postgres")
        users = ", ".join(f"({i}, 'u{i}@example.com', 'user{i}', '\\x00')"
                          for i in range(1, USERS + 1))
        psql(f"INSERT INTO users (id, email, username, password) VALUES {users}")
        psql(f"SELECT setval('users_id_seq', {USERS})")
        psql("CREATE TABLE chaos_due (cron_id int NOT NULL, scheduled timestamp NOT NULL, "
             "bad bool NOT NULL, origin text NOT NULL, recorded timestamptz DEFAULT now())")
        if self.args.lived:
            self.load_history(self.args.lived)
        psql("CREATE TABLE chaos_history AS "
             "SELECT user_id, max(number) AS last FROM builds GROUP BY user_id")
        # Redis: replace the services' non-persistent instance by ours (same port, AOF on).
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "shutdown",
                        "nosave"], capture_output=True, check=False)
        deadline = time.time() + 10
        while redis_try("PING") is not None and time.time() < deadline:
            time.sleep(0.05)
        self.redis.start()
        if "pg_failover" in FAULTS:
            t0 = time.time()
            STANDBY = self.make_standby(os.path.join(RUNDIR, "pgdata-2"), pooler.free_port(), 2)
            log(f"standby {STANDBY.port} streaming from {PG.port} ({time.time() - t0:.1f}s)")
        if POOLED:
            psql(f"DO $$BEGIN CREATE ROLE {PROBE_ROLE} LOGIN PASSWORD 'secret'; EXCEPTION WHEN "
                 f"duplicate_object THEN NULL; END$$", db="postgres")
            users = {f"chaos_{n}": "secret" for n in REPLICAS}
            users[PROBE_ROLE] = "secret"
            self.bouncer = pooler.PgBouncer(RUNDIR, PGHOST, PGPORT, DB, users,
                                            admin_password=f"admin{os.getpid()}")
            try:
                self.bouncer.start()
            except pooler.PoolerError as e:
                raise HarnessError(str(e)) from e
            log(f"PgBouncer {self.bouncer.port} (session pooling, md5) in front of PostgreSQL "
                f"{PGPORT}: replicas {', '.join(POOLED)} through it, "
                f"{', '.join(n for n in REPLICAS if n not in POOLED)} directly")
        for name in REPLICAS:
            netns = NETNS if name == PART_REPLICA and "partition" in FAULTS else ""
            addr = f"127.0.0.1:{self.bouncer.port}" if name in POOLED else ""
            self.replicas[name] = Replica(name, self.args.bin, RUNDIR, netns, addr)
            self.replicas[name].start()
        holder = self.wait_leader(None, 20)
        if holder is None:
            raise HarnessError("no leader within 20 s of start")
        # Each replica really connects the way it should (else a PgBouncer fault would fault
        # nothing): the scheduler says whether it sees a pooler (its server process differs from
        # libpq's backend pid).
        deadline = time.time() + 20
        while time.time() < deadline:
            wrong = []
            for name, rep in self.replicas.items():
                out = rep.output()
                if "connected to PostgreSQL" not in out or \
                        ("through a session-pooling proxy" in out) != rep.pooled:
                    wrong.append(name)
            if not wrong:
                break
            time.sleep(0.2)
        else:
            raise HarnessError(f"replicas {wrong} did not connect "
                               f"{'through PgBouncer' if POOLED else 'directly'} as configured "
                               f"(see their logs in {RUNDIR})")
        if POOLED:
            ok, clients = self.bouncer.admin("SHOW CLIENTS")
            seen = {f"chaos_{n}" for n in POOLED if f"chaos_{n}" in clients}
            if not ok or len(seen) != len(POOLED):
                raise HarnessError(f"PgBouncer does not list the pooled replicas' sessions: "
                                   f"{clients[:400]}")
        if "partition" in FAULTS:
            # Replica c really talks over the veth pair (else the cut would cut nothing).
            deadline = time.time() + 20
            addrs = None
            while time.time() < deadline:
                addrs = psql_try(f"SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
                                 f"WHERE usename = 'chaos_{PART_REPLICA}'")
                if addrs:
                    break
                time.sleep(0.2)
            if addrs != [[NET_NS_ADDR]]:
                raise HarnessError(f"replica {PART_REPLICA}'s PostgreSQL sessions come from "
                                   f"{addrs}, not from {NET_NS_ADDR} in {NETNS} (see its log "
                                   f"{self.replicas[PART_REPLICA].log_path})")
            log(f"replica {PART_REPLICA} in network namespace {NETNS}: PostgreSQL sees it at "
                f"{NET_NS_ADDR}")
        log(f"3 replicas started, leader {holder[1]}")

    # ---- observation

    def lock_holder(self):
        """(backend pid, replica name) holding the advisory lock in our database, or None."""
        rows = psql_try("SELECT l.pid, a.usename FROM pg_locks l JOIN pg_stat_activity a "
                        f"USING (pid) WHERE {LEADER_LOCK_WHERE}", timeout=5)
        if not rows:
            return None
        pid, role = rows[0]
        return int(pid), role.replace("chaos_", "")

    def wait_leader(self, old_pid, timeout):
        """Waits for a lock holder whose backend is not old_pid; returns (pid, name) or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            h = self.lock_holder()
            if h is not None and h[0] != old_pid:
                return h
            time.sleep(0.1)
        return None

    def due_count(self):
        r = psql_try("SELECT count(*) FROM cron WHERE next_run <= now()::timestamp")
        return int(r[0][0]) if r else None

    def builds_and_jobs(self):
        r = psql_try(f"SELECT count(*) FROM builds WHERE id > {LIVED_BUILDS}")
        jobs = redis_try("LLEN", "builds_docker:active")
        if r is None or jobs is None:
            return None
        return int(r[0][0]), int(jobs)

    # ---- faults

    def burst(self, workload, n):
        """n crons due now: the next pass takes them in batches of BATCH_SIZE, so the fault that
        follows lands in the middle of a pass (before, during or after a commit)."""
        workload.insert(n, 0.0, "burst")

    def burst_progress(self):
        r = psql_try("SELECT count(*) FILTER (WHERE c.next_run > now()::timestamp), count(*) "
                     "FROM cron c JOIN chaos_due d ON d.cron_id = c.id AND d.origin = 'burst' "
                     "WHERE d.recorded = (SELECT max(recorded) FROM chaos_due "
                     "WHERE origin = 'burst')", timeout=5)
        return f"{r[0][0]}/{r[0][1]}" if r else "?"

    def sessions_of(self, role):
        rows = psql_try(f"SELECT pid FROM pg_stat_activity WHERE usename = '{role}'", timeout=5)
        return None if rows is None else {int(r[0]) for r in rows}

    def lead_on(self, names):
        """Moves the lock to one of the replicas `names` if another holds it: SIGTERMs the
        other replicas (a leader releases the lock as it exits), waits until one of `names`
        holds it, starts them again and waits until they are connected standbys. Returns a
        note, or None if it failed."""
        h = self.lock_holder()
        if h is not None and h[1] in names:
            return ""
        t0 = time.time()
        others = [r for n, r in self.replicas.items() if n not in names]
        for r in others:
            r.expected_exit = True
            r.signal(signal.SIGTERM)
        for r in others:
            try:
                rc = r.proc.wait(DRAIN_S + 5)
            except subprocess.TimeoutExpired:
                rc = None
                r.signal(signal.SIGKILL)
                r.proc.wait(10)
            if rc != 0:
                self.violation(f"replica {r.name} exited {rc} on SIGTERM (moving the lock to "
                               f"{'/'.join(names)}), not 0")
        # Replicas behind PgBouncer may need up to its server_login_retry (15 s) to log in
        # again after a PostgreSQL outage (a pg_restart or pg_failover shortly before).
        got = None
        deadline = time.time() + LOCK_TIMEOUT_S * 2 + (20 if POOLED else 10)
        while time.time() < deadline:
            h = self.lock_holder()
            if h is not None and h[1] in names:
                got = h
                break
            time.sleep(0.1)
        for r in others:
            r.start()
        if not self.wait_connected([r.name for r in others], 30 if POOLED else 20):
            self.violation(f"replicas {[r.name for r in others]} not connected "
                           f"{30 if POOLED else 20} s after their restart")
        if got is None:
            self.violation(f"replica {'/'.join(names)} did not take the lock with every other "
                           f"replica stopped")
            return None
        return (f"lock moved to {got[1]} first ({', '.join(r.name for r in others)} stopped and "
                f"restarted, {time.time() - t0:.1f}s)")

    def connected_each(self, names, t0, timeout, since):
        """For each replica in names, the time (s after t0) of the first poll that saw it with a
        PostgreSQL session not in since[name] (a set of backend pids); None if not within
        timeout s of t0."""
        out = {n: None for n in names}
        while time.time() < t0 + timeout and any(v is None for v in out.values()):
            rows = psql_try("SELECT usename, pid FROM pg_stat_activity", timeout=5) or []
            now = time.time()
            have = {}
            for role, pid in rows:
                have.setdefault(role, set()).add(int(pid))
            for n in names:
                if out[n] is None and have.get("chaos_" + n, set()) - since.get(n, set()):
                    out[n] = now - t0
            time.sleep(0.1)
        return out

    def measure_reconnects(self, f, t0, before, what):
        """In the background (the next fault does not wait for it): when each replica has a
        session on the (new) server again, up to 30 s after t0; appended to the fault's note,
        and a violation if one did not, once the thread is joined (join_measurements)."""
        def run():
            per = self.connected_each(REPLICAS, t0, 30, before)
            f["reconnect"] = per
            f["later"] = "replicas connected again " + ", ".join(
                f"{n} {fmt_s(x)}" for n, x in per.items()) + " " + what
            slow = [n for n, x in per.items() if x is None]
            if slow:
                self.violation(f"{f['kind']} at {f['t']:.1f}s: replica(s) {slow} had no session "
                               f"30 s {what}")
        th = threading.Thread(target=run, daemon=True)
        th.start()
        self.measurements.append(th)

    def join_measurements(self):
        for th in self.measurements:
            th.join(40)
        self.measurements = []

    def wait_connected(self, names, timeout, since=None):
        """Waits until each replica in names has a PostgreSQL session (one that was not in
        since[name], a set of backend pids, if given); returns the time it took, or None."""
        t0 = time.time()
        deadline = t0 + timeout
        while time.time() < deadline:
            rows = psql_try("SELECT usename, pid FROM pg_stat_activity", timeout=5) or []
            have = {}
            for role, pid in rows:
                have.setdefault(role, set()).add(int(pid))
            if all(have.get("chaos_" + n, set()) - (since or {}).get(n, set()) for n in names):
                return time.time() - t0
            time.sleep(0.1)
        return None

    def inject(self, kind, workload):
        rng = self.rng
        f = {"kind": kind, "t": time.time() - T0, "param": "", "before": "-", "after": "-",
             "failover_s": None, "burst": "-", "note": ""}
        if kind == "partition":
            # The partitioned replica must be the leader when its link is cut.
            moved = self.lead_on((PART_REPLICA,))
            if moved is None:
                return
            f["note"] = moved
        elif kind in POOLER_FAULTS:
            # The leader must be behind PgBouncer, else the fault only touches standbys.
            moved = self.lead_on(POOLED)
            if moved is None:
                return
            f["note"] = moved
        if kind in ("pg_restart", "pg_failover"):
            self.wait_standby()
        holder = self.lock_holder()
        if holder is None:
            holder = self.wait_leader(None, 30)
        if holder is None:
            self.violation(f"before {kind}: no leader for 30 s")
            return
        old_pid, old_name = holder
        f["before"] = old_name
        rep = self.replicas[old_name]
        burst_n = rng.randint(150, 400)
        delay = rng.uniform(0.0, 0.8)
        if kind == "partition":
            # Cut within the burst's pass (150-400 crons: about 0.1-0.5 s here), not after it.
            delay /= 4
        self.burst(workload, burst_n)
        # Wait until the next tick boundary plus a random delay: the pass is then running.
        now = time.time()
        boundary = (int(now) // INTERVAL_S + 1) * INTERVAL_S
        time.sleep(max(0.0, boundary + delay - now))
        if kind == "partition" or kind in POOLER_FAULTS:
            now_holder = self.lock_holder()
            if now_holder != (old_pid, old_name):
                self.violation(f"{kind}: the lock moved from replica {old_name} (backend "
                               f"{old_pid}) to {now_holder} before the fault, with no fault "
                               f"injected")
                return
        f["burst"] = self.burst_progress()
        t_inject = time.time()
        f["t"] = t_inject - T0

        if kind == "kill9":
            restart_after = rng.uniform(1.0, 4.0)
            f["param"] = f"restart after {restart_after:.1f}s"
            rep.expected_exit = True
            rep.signal(signal.SIGKILL)
            new = self.wait_leader(old_pid, 30)
            self.note_failover(f, new, t_inject)
            time.sleep(max(0.0, t_inject + restart_after - time.time()))
            rep.proc.wait(10)
            rep.start()
        elif kind == "sigterm":
            restart_after = rng.uniform(1.0, 4.0)
            f["param"] = f"restart after {restart_after:.1f}s"
            rep.expected_exit = True
            rep.signal(signal.SIGTERM)
            new = self.wait_leader(old_pid, 30)
            self.note_failover(f, new, t_inject)
            try:
                rc = rep.proc.wait(DRAIN_S + 5)
            except subprocess.TimeoutExpired:
                rc = None
                self.violation(f"SIGTERM: replica {old_name} did not exit within "
                               f"{DRAIN_S + 5}s")
                rep.signal(signal.SIGKILL)
                rep.proc.wait(10)
            if rc is not None and rc != 0:
                self.violation(f"SIGTERM: replica {old_name} exited {rc}, not 0")
            if "leadership released" not in rep.output():
                self.violation(f"SIGTERM: replica {old_name} did not log 'leadership released'")
            f["note"] = f"exit {rc}"
            time.sleep(max(0.0, t_inject + restart_after - time.time()))
            rep.start()
        elif kind == "pg_terminate":
            f["param"] = f"all sessions of {rep.role}"
            psql_try(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE usename = '{rep.role}'")
            new = self.wait_leader(old_pid, 30)
            self.note_failover(f, new, t_inject)
        elif kind == "pg_restart":
            f["param"] = "pg_ctl restart -m fast"
            before = {n: self.sessions_of(f"chaos_{n}") or set() for n in REPLICAS}
            t_restart = time.time()
            p = PG.pg_ctl("-l", PG.log, "restart", "-m", "fast", "-w", "-t", "60")
            if p.returncode != 0:
                raise HarnessError(f"pg_ctl restart failed: {p.stderr.strip()}")
            t_up = time.time()
            f["note"] = f"PostgreSQL down {t_up - t_restart:.1f}s"
            new = self.wait_leader(old_pid, 30)
            self.note_failover(f, new, t_inject)
            # How long until every replica has a session again (through PgBouncer: it may
            # refuse logins for server_login_retry after a failed server login).
            self.measure_reconnects(f, t_up, before, "after it was up")
        elif kind in ("redis_pause", "redis_restart"):
            lo, hi = (12, 20) if self.args.duration <= 300 else (20, 40)
            down = rng.uniform(lo, hi)
            f["param"] = f"down {down:.0f}s"
            if kind == "redis_pause":
                self.redis.signal(signal.SIGSTOP)
            else:
                self.redis.kill9()
            time.sleep(max(0.0, t_inject + down - time.time()))
            if kind == "redis_pause":
                self.redis.signal(signal.SIGCONT)
            else:
                self.redis.start()
            t_back = time.time()
            back = psql_try("SELECT now()::timestamp")
            back = back[0][0] if back else "now()"
            # The backlog: every committed build has its job again, and every cron that was due
            # when Redis came back has been dispatched (crons falling due since do not count).
            drained = None
            deadline = time.time() + 60
            while time.time() < deadline:
                bj = self.builds_and_jobs()
                late = psql_try(f"SELECT count(*) FROM cron WHERE next_run <= '{back}'")
                if bj and bj[0] == bj[1] and late and late[0][0] == "0":
                    drained = time.time() - t_back
                    break
                time.sleep(0.2)
            if drained is None:
                self.violation(f"{kind}: backlog not enqueued within 60 s of Redis coming back")
                f["note"] = "backlog NOT drained in 60s"
            else:
                f["note"] = f"backlog enqueued {drained:.1f}s after Redis was back"
            h = self.lock_holder()
            f["after"] = h[1] if h else "?"
            if h and h[0] != old_pid:
                # The leader blocked on Redis longer than lock_timeout between transactions: its
                # lock session was ended by idle_session_timeout (safe, but a leadership change).
                f["note"] += "; lock session lost during the outage"
        elif kind == "freeze":
            hold = LOCK_TIMEOUT_S + rng.uniform(2.0, 6.0)
            f["param"] = f"SIGSTOP {hold:.1f}s (lock_timeout {LOCK_TIMEOUT_S}s)"
            rep.signal(signal.SIGSTOP)
            new = self.wait_leader(old_pid, LOCK_TIMEOUT_S * 3 + 10)
            self.note_failover(f, new, t_inject)
            time.sleep(max(0.0, t_inject + hold - time.time()))
            alive = psql_try(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {old_pid}")
            if alive and alive[0][0] != "0":
                self.violation(f"freeze: the frozen leader's lock session {old_pid} still exists "
                               f"{hold:.1f}s later")
            t_resume = time.time()
            offset = os.path.getsize(rep.log_path)
            rep.signal(signal.SIGCONT)
            time.sleep(LOCK_TIMEOUT_S + 2)
            t_check = time.time()
            with open(rep.log_path, "r", encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                after = fh.read()
            if "leadership lost" not in after:
                self.violation(f"freeze: replica {old_name} did not log 'leadership lost' within "
                               f"{t_check - t_resume:.1f}s of SIGCONT")
            h = self.lock_holder()
            if h and h[1] == old_name:
                f["note"] = "resumed replica leads again (new leader lost the lock?)"
            self.freezes.append({"name": old_name, "role": rep.role, "old_pid": old_pid,
                                 "stop": t_inject, "resume": t_resume, "check": t_check,
                                 "leader_at_check": h[1] if h else None})
            tried = after.count("nothing of it was committed")
            f["note"] = (f["note"] + " " if f["note"] else "") + (
                "resumed: stepped down" + (f", its batch on the dead session failed ({tried})"
                                           if tried else ""))
        elif kind == "partition":
            hold = LOCK_TIMEOUT_S + rng.uniform(4.0, 8.0 if self.args.duration <= 300 else 16.0)
            f["param"] = f"link cut {hold:.1f}s (lock_timeout {LOCK_TIMEOUT_S}s)"
            self.partition(rep, old_pid, hold, f)
        elif kind == "pg_failover":
            self.pg_failover(old_pid, f, t_inject)
        elif kind == "pgbouncer_restart":
            self.pgbouncer_restart(rep, old_pid, f, t_inject)
        elif kind in ("pgbouncer_pause", "pgbouncer_suspend"):
            self.pgbouncer_hold(kind, rep, old_pid, f, t_inject)
        else:
            raise HarnessError(f"unknown fault {kind}")
        self.faults.append(f)
        took = "" if f["failover_s"] is None else f"in {f['failover_s']:.2f}s"
        log(f"fault {kind:13} {f['param']:36} leader {f['before']} -> {f['after']} {took} "
            f"burst {f['burst']} {f['note']}")

    def partition(self, rep, old_pid, hold, f):
        """Cuts the leader's link for `hold` seconds (see partition.py), measuring from the
        database when its session ends and when a standby holds the lock; then restores it and
        waits until the replica is connected again, as a standby. What it committed, and when
        the standby first committed, is checked at the end (check_partitions)."""
        sessions = self.sessions_of(rep.role) or set()
        offset = os.path.getsize(rep.log_path)
        p = {"name": rep.name, "role": rep.role, "old_pid": old_pid, "sessions": sessions,
             "hold": hold, "log": rep.log_path, "log_offset": offset, "fault": f}
        pglog = PG.log
        pglog_offset = os.path.getsize(pglog)
        t_start = time.time()
        self.cut_active = True
        net.cut(NETNS, NET_HOST_IF, NET_NS_IF)
        t_cut = time.time()
        p["cut"] = t_cut
        p["cut_took"] = t_cut - t_start
        ended = lock = None
        new = None
        lock_sql = LOCK_SQL
        while time.time() < t_cut + hold:
            rows = psql_try(f"SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = "
                            f"{old_pid}), ({lock_sql})", timeout=5)
            now = time.time()
            if rows:
                alive, holder = rows[0][0], rows[0][1] if len(rows[0]) > 1 else ""
                if ended is None and alive == "0":
                    ended = now - t_cut
                if lock is None and holder:
                    pid, role = holder.split(" ", 1)
                    if int(pid) != old_pid:
                        lock = now - t_cut
                        new = (int(pid), role.replace("chaos_", ""))
                        if new[1] == rep.name:
                            self.violation(f"partition: replica {rep.name} took the lock again "
                                           f"(backend {pid}) while its link was cut")
            time.sleep(0.05)
        net.restore(NETNS, NET_HOST_IF, NET_NS_IF)
        self.cut_active = False
        t_restore = time.time()
        p["restore"] = t_restore
        p["ended_poll_s"] = ended
        p["lock_s"] = lock
        p["new"] = new
        # The server's own account: it logs why and when it ended the session (the poll above
        # is an upper bound, sampled).
        p["ended_how"] = None
        with open(pglog, "r", encoding="utf-8", errors="replace") as fh:
            fh.seek(pglog_offset)
            for line in fh:
                m = PG_ANY.match(line)
                if m and int(m.group(2)) == old_pid and m.group(4) == "FATAL":
                    t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                        tzinfo=dt.timezone.utc).timestamp()
                    if ended is not None:
                        ended = t - t_cut
                    p["ended_how"] = m.group(5).replace("terminating connection due to ", "")
                    break
        p["ended_s"] = ended
        if ended is None:
            self.violation(f"partition: the server did not end replica {rep.name}'s session "
                           f"{old_pid} during the {hold:.1f}s cut (lock_timeout "
                           f"{LOCK_TIMEOUT_S}s)")
        elif ended > LOCK_TIMEOUT_S + 1.0:
            self.violation(f"partition: the server ended replica {rep.name}'s session "
                           f"{ended:.2f}s after the cut, more than lock_timeout "
                           f"{LOCK_TIMEOUT_S}s (+1 s of tolerance)")
        if new is None:
            self.violation(f"partition: no standby took the lock during the {hold:.1f}s cut")
            f["after"] = "NONE"
        else:
            f["after"] = new[1]
            f["failover_s"] = lock
        # After the cut: the replica reconnects, as a standby (the lock is the new leader's).
        rejoined = None
        deadline = t_restore + 20
        while time.time() < deadline:
            now_sessions = self.sessions_of(rep.role)
            if now_sessions and now_sessions - sessions:
                rejoined = time.time() - t_restore
                break
            time.sleep(0.1)
        p["rejoin_s"] = rejoined
        if rejoined is None:
            self.violation(f"partition: replica {rep.name} not connected again 20 s after the "
                           f"link came back")
        time.sleep(1.0)  # a pass of the new leader, a lock attempt of the replica
        lost = None
        with open(rep.log_path, "r", encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            for line in fh:
                if "leadership lost" in line:
                    lost = log_time(line)
                    p["lost_msg"] = json_msg(line)
                    break
        p["stepped_down_s"] = None if lost is None else lost - t_cut
        # The new leader's own account of when it took the lock (the database poll above is
        # an upper bound, sampled).
        p["acquired_s"] = None
        if new is not None:
            with open(self.replicas[new[1]].log_path, "r", encoding="utf-8",
                      errors="replace") as fh:
                for line in fh:
                    if "leadership acquired" in line:
                        t = log_time(line)
                        if t is not None and t > t_cut:
                            p["acquired_s"] = t - t_cut
                            break
        if lost is None:
            self.violation(f"partition: replica {rep.name} did not log 'leadership lost' after "
                           f"the cut")
        h = self.lock_holder()
        leader_metric = rep.metric("djinn_scheduler_leader")
        p["check"] = time.time()
        p["leader_at_check"] = h[1] if h else None
        if leader_metric == 1 and (h is None or h[1] != rep.name):
            self.violation(f"partition: replica {rep.name} reports itself leader after the cut "
                           f"while {h} holds the lock")
        if leader_metric is None:
            self.violation(f"partition: replica {rep.name}'s /metrics unreachable after the link "
                           f"came back")
        self.partitions.append(p)
        parts = [f"server ended its session {fmt_s(ended)} after the cut"
                 + (f" ({p['ended_how']})" if p["ended_how"] else ""),
                 f"it stepped down {fmt_s(p['stepped_down_s'])} after",
                 f"reconnected {fmt_s(rejoined)} after the link came back"]
        if h and h[1] == rep.name:
            parts.append("leads again")
        else:
            parts.append("as a standby" if leader_metric == 0 else f"leader metric {leader_metric}")
        f["note"] = "; ".join(([f["note"]] if f["note"] else []) + parts)

    # ---- the standby and pg_failover

    def make_standby(self, data, port, generation):
        """A streaming standby of PG: pg_basebackup -R (primary_conninfo and standby.signal),
        started with PG's own options (its postmaster.opts) on `port`, its log
        postgres-<generation>.log. Returns its PgCluster once it accepts connections."""
        t0 = time.time()
        if os.path.exists(data):
            shutil.rmtree(data)
        sb = PgCluster(data, port, os.path.join(RUNDIR, f"postgres-{generation}.log"))
        t1 = time.time()
        p = subprocess.run(as_postgres([os.path.join(PGBIN, "pg_basebackup"), "-h", PGHOST, "-p",
                                        PG.port, "-U", "postgres", "-D", data, "-R", "-X",
                                        "stream", "-c", "fast"]),
                           capture_output=True, text=True, timeout=300, check=False)
        if p.returncode != 0:
            raise HarnessError(f"pg_basebackup from {PG.port} failed: {p.stderr.strip()[:400]}")
        t2 = time.time()
        p = sb.pg_ctl("-l", sb.log, "-w", "-t", "60", "-o", sb.start_options(PG), "start")
        sb.made = (t1 - t0, t2 - t1, time.time() - t2)
        if p.returncode != 0:
            raise HarnessError(f"the standby did not start: {p.stderr.strip()[:300]} (see "
                               f"{sb.log})")
        if sb.log not in PG_LOGS:
            PG_LOGS.append(sb.log)
        if psql_on(sb, "SELECT pg_is_in_recovery()") != [["t"]]:
            raise HarnessError(f"the standby {sb.port} is not in recovery")
        return sb

    def pg_failover(self, old_pid, f, t_inject):
        """Stops the primary (fast: it sends its remaining WAL to the standby first), promotes
        the standby after a seeded detection delay, repoints PgBouncer at it (as a failover
        hook would) and from then on writes to it; then makes a new standby of it, on the old
        primary's port, for the next pg_failover. The direct replicas find the new primary by
        their host list (target_session_attrs=read-write); the pooled ones through PgBouncer."""
        global PG, STANDBY  # pylint: disable=global-statement
        delay = self.rng.uniform(0.3, 2.0)
        old, new = PG, STANDBY
        f["param"] = f"primary {old.port} stopped fast, standby {new.port} promoted after {delay:.1f}s"
        before = {n: self.sessions_of(f"chaos_{n}") or set() for n in REPLICAS}
        p = old.pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
        if p.returncode != 0:
            raise HarnessError(f"pg_failover: pg_ctl stop failed: {p.stderr.strip()[:300]}")
        t_stopped = time.time()
        # Every WAL record of the stopped primary must be on the standby, else its data would
        # be lost by the failover (PostgreSQL's loss, not the scheduler's): a harness error.
        ctl = subprocess.run([os.path.join(PGBIN, "pg_controldata"), old.data],
                             capture_output=True, text=True, check=False).stdout
        m = re.search(r"Latest checkpoint location:\s+(\S+)", ctl)
        if not m:
            raise HarnessError(f"pg_failover: no checkpoint location in pg_controldata: {ctl[:200]}")
        lsn = m.group(1)
        deadline = time.time() + 20
        while psql_on(new, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") != [["t"]]:
            if time.time() > deadline:
                raise HarnessError(f"pg_failover: the standby did not replay the old primary's "
                                   f"shutdown checkpoint {lsn} within 20 s")
            time.sleep(0.05)
        time.sleep(max(0.0, t_stopped + delay - time.time()))
        p = new.pg_ctl("promote", "-w", "-t", "60")
        if p.returncode != 0:
            raise HarnessError(f"pg_failover: promote failed: {p.stderr.strip()[:300]}")
        t_promoted = time.time()
        PG = new
        if self.bouncer is not None:
            try:
                self.bouncer.repoint(new.port)
            except pooler.PoolerError as e:
                raise HarnessError(f"pg_failover: {e}") from e
        t_repointed = time.time()
        h = self.wait_leader(None, 30)
        self.note_failover(f, h, t_inject)
        self.measure_reconnects(f, t_promoted, before, "after the promotion")
        f["note"] = "; ".join(([f["note"]] if f["note"] else []) + [
            f"WAL up to {lsn} replayed, promoted {t_promoted - t_stopped:.1f}s after the stop"
            + (f", PgBouncer repointed {t_repointed - t_promoted:.2f}s later" if self.bouncer
               else "")])
        # The next standby, on the old primary's port, in its data directory: in the
        # background (a pg_restart or pg_failover waits for it: wait_standby).
        STANDBY = None
        generation = len(PG_LOGS) + 1

        def rebuild():
            global STANDBY  # pylint: disable=global-statement
            t0 = time.time()
            try:
                STANDBY = self.make_standby(old.data, old.port, generation)
                f["later_standby"] = (f"new standby {STANDBY.port} in {time.time() - t0:.1f}s "
                                      f"(rm, basebackup, start: "
                                      + "/".join(f"{x:.1f}" for x in STANDBY.made) + ")")
            except (HarnessError, OSError, subprocess.SubprocessError) as e:
                self.standby_error = f"pg_failover: the new standby: {e}"
        self.standby_thread = threading.Thread(target=rebuild, daemon=True)
        self.standby_thread.start()

    def wait_standby(self):
        """Waits for the standby being rebuilt after a pg_failover (a restart of the primary
        would break its pg_basebackup; the next pg_failover needs it)."""
        if self.standby_thread is not None:
            self.standby_thread.join(600)
            self.standby_thread = None
        if self.standby_error:
            raise HarnessError(self.standby_error)

    # ---- the PgBouncer faults

    def observe(self, old_pid, until, every=0.1, rep=None):
        """Polls the database every `every` s until `until` (epoch): when the old lock backend
        was first seen gone, and when a backend other than it first held the lock. With rep
        (the old leader), also when its /metrics said djinn_scheduler_leader 1 while another
        backend held the lock (two_leaders: [first, last] sample)."""
        o = {"ended": None, "lock": None, "new": None, "two_leaders": None}
        while True:
            rows = psql_try(f"SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid = "
                            f"{old_pid}), ({LOCK_SQL})", timeout=5)
            now = time.time()
            if rows:
                alive, holder = rows[0][0], rows[0][1] if len(rows[0]) > 1 else ""
                if o["ended"] is None and alive == "0":
                    o["ended"] = now
                if holder and int(holder.split(" ", 1)[0]) != old_pid:
                    if o["lock"] is None:
                        pid, role = holder.split(" ", 1)
                        o["lock"] = now
                        o["new"] = (int(pid), role.replace("chaos_", ""))
                    if rep is not None and rep.metric("djinn_scheduler_leader", 0.3) == 1:
                        t = time.time()
                        o["two_leaders"] = [(o["two_leaders"] or [t])[0], t]
            if now >= until:
                return o
            time.sleep(min(every, max(0.0, until - now)))

    def server_ended(self, pid, pglog_offset):
        """(time, why) of the FATAL line of backend pid in the PostgreSQL log after the offset
        (the server ending the session: idle-session timeout...), or (None, None)."""
        with open(PG.log, "r", encoding="utf-8", errors="replace") as fh:
            fh.seek(pglog_offset)
            for line in fh:
                m = PG_ANY.match(line)
                if m and int(m.group(2)) == pid and m.group(4) == "FATAL":
                    t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
                        tzinfo=dt.timezone.utc).timestamp()
                    return t, m.group(5).replace("terminating connection due to ", "")
        return None, None

    def first_log(self, rep, offset, text, wait=0.0):
        """Time (epoch, from the replica's own log) of its first line containing text after
        offset, waiting up to `wait` s for it; None if there is none."""
        deadline = time.time() + wait
        while True:
            with open(rep.log_path, "r", encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                for line in fh:
                    if text in line:
                        return log_time(line)
            if time.time() >= deadline:
                return None
            time.sleep(0.1)

    def probe_login(self, result, connect_timeout=2):
        """A new login through PgBouncer (the probe role) and one query: records in result
        (a dict) whether it got through and how long it took. Through a paused or suspended
        pool it must wait."""
        t0 = time.time()
        env = dict(ENV, PGPASSWORD="secret", PGCONNECT_TIMEOUT=str(connect_timeout))
        try:
            p = subprocess.run(["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p",
                                str(self.bouncer.port), "-U", PROBE_ROLE, "-d", DB, "-c",
                                "SELECT 'probe'"], capture_output=True, text=True,
                               timeout=connect_timeout + 30, env=env, check=False)
            result["ok"] = p.returncode == 0 and p.stdout.strip() == "probe"
            result["out"] = (p.stdout + p.stderr).strip()
        except subprocess.TimeoutExpired:
            result["ok"], result["out"] = False, "psql did not return"
        result["start"], result["end"] = t0, time.time()

    def pgbouncer_restart(self, rep, old_pid, f, t_inject):
        """Kills PgBouncer (SIGKILL: a crash; or SIGTERM: its immediate shutdown) and starts it
        again on the same port after a seeded pause. Every session through it dies with it:
        the leader behind it must step down and a replica (the direct one, while PgBouncer is
        down) must lead."""
        how = self.rng.choice(("SIGKILL", "SIGTERM"))
        down = self.rng.uniform(0.5, 2.5)
        f["param"] = f"{how}, started again after {down:.1f}s"
        offset = os.path.getsize(rep.log_path)
        pooled_before = {n: self.sessions_of(f"chaos_{n}") or set() for n in POOLED}
        self.bouncer.kill(signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM)
        o = self.observe(old_pid, t_inject + down)
        try:
            self.bouncer.start()
        except pooler.PoolerError as e:
            raise HarnessError(f"pgbouncer_restart: {e}") from e
        t_back = time.time()
        if o["new"] is None:
            new = self.wait_leader(old_pid, 30)
            if new is not None:
                o["lock"], o["new"] = time.time(), new
        if o["ended"] is None:
            o2 = self.observe(old_pid, time.time())
            o["ended"] = o2["ended"]
        rejoin = self.wait_connected(POOLED, 30, since=pooled_before)
        lost = self.first_log(rep, offset, "leadership lost", wait=5)
        if o["new"] is None:
            self.violation(f"pgbouncer_restart: no new leader within 30 s of PgBouncer's restart")
            f["after"] = "NONE"
        else:
            f["after"] = o["new"][1]
            f["failover_s"] = o["lock"] - t_inject
        if o["ended"] is None:
            self.violation(f"pgbouncer_restart: the leader's server session {old_pid} outlived "
                           f"PgBouncer")
        if lost is None:
            self.violation(f"pgbouncer_restart: replica {rep.name} (the leader behind PgBouncer) "
                           f"did not log 'leadership lost'")
        if rejoin is None:
            self.violation(f"pgbouncer_restart: replicas {', '.join(POOLED)} not connected "
                           f"through PgBouncer 30 s after it was back")
        self.isolations.append({"kind": "pgbouncer_restart", "name": rep.name, "role": rep.role,
                                "old_pid": old_pid, "t": t_inject, "ended": o["ended"],
                                "lock_at": o["lock"], "back": t_back,
                                "lost": lost, "check": time.time(), "fault": f})
        f["note"] = "; ".join(([f["note"]] if f["note"] else []) + [
            f"its server session gone {fmt_s(o['ended'] and o['ended'] - t_inject)} after",
            f"{rep.name} stepped down {fmt_s(lost and lost - t_inject)} after",
            f"{', '.join(POOLED)} reconnected through it {fmt_s(rejoin)} after it was back "
            f"({fmt_s(t_back - t_inject)})"])

    def pgbouncer_hold(self, kind, rep, old_pid, f, t_inject):
        """PAUSE or SUSPEND on PgBouncer's admin console for a seeded time, shorter or longer
        than lock_timeout (alternately, from a seeded start), then RESUME.

        PAUSE, in session pooling, leaves the sessions linked to a server connection alone (the
        command waits until their clients disconnect, which the replicas never do); only new
        logins wait. The leader behind it must keep its lock and keep dispatching. SUSPEND
        stops all socket traffic: the leader's queries wait in PgBouncer while its server
        session, idle, is ended by the server at lock_timeout; the direct replica must lead, and
        the suspended leader must commit nothing once its session ended (check_isolations)."""
        command = "PAUSE" if kind == "pgbouncer_pause" else "SUSPEND"
        alt = self.kind_count.get(kind + ":longer")
        longer = self.rng.random() < 0.5 if alt is None else not alt
        self.kind_count[kind + ":longer"] = longer
        if longer and command == "SUSPEND":
            # Long enough for the server to end the idle session (lock_timeout after its last
            # statement) and for the direct standby to take the lock (a retry_interval later).
            hold = LOCK_TIMEOUT_S * self.rng.uniform(1.25, 1.6)
        elif longer:
            hold = LOCK_TIMEOUT_S * self.rng.uniform(1.05, 1.3)
        else:
            # The server ends a session lock_timeout after its last statement, which comes up to
            # a heartbeat interval (lock_timeout/4) and a Redis ping (lock_timeout/8) before the
            # fault: below 0.55 x lock_timeout the leader's session survives.
            hold = LOCK_TIMEOUT_S * self.rng.uniform(0.3, 0.55)
        f["param"] = (f"{command} {hold:.1f}s ({'longer' if longer else 'shorter'} than "
                      f"lock_timeout {LOCK_TIMEOUT_S}s)")
        offset = os.path.getsize(rep.log_path)
        pglog_offset = os.path.getsize(PG.log)
        bouncer_log = self.bouncer.log_size()
        adm = pooler.AdminSession(self.bouncer)
        adm.send(command)
        if command == "SUSPEND":
            self.bouncer_admin = adm
            # SUSPEND returns once every socket buffer is flushed: a client slow to read (a
            # sanitized replica taking a large result) holds it up; the hold starts after it.
            t_sent = time.time()
            r = adm.wait(30)
            if r is None or r[1] != "SUSPEND":
                raise HarnessError(f"pgbouncer SUSPEND: {r and r[1] or 'no reply within 30 s'}")
            took = time.time() - t_sent
            if took > 1:
                f["note"] = "; ".join(([f["note"]] if f.get("note") else []) +
                                      [f"SUSPEND took {took:.1f}s to take effect"])
        else:
            self.bouncer_paused = True
        t_held = time.time()
        probe = {}
        time.sleep(0.2)
        prober = threading.Thread(target=self.probe_login, args=(probe,), daemon=True)
        prober.start()
        o = self.observe(old_pid, t_held + hold, rep=rep)
        pending = adm.replies.empty() if command == "PAUSE" else None
        if command == "PAUSE":
            # A PAUSE still waiting holds its session: RESUME on another one.
            ok, out = self.bouncer.admin("RESUME")
        else:
            adm.send("RESUME")
            r = adm.wait(5)
            ok, out = (r is not None and r[1] == "RESUME"), (r[1] if r else "no reply")
        t_resume = time.time()
        if not ok:
            raise HarnessError(f"pgbouncer RESUME after {command}: {out}")
        self.bouncer_paused, self.bouncer_admin = False, None
        # A PAUSE that was still waiting: does RESUME answer it?
        reply = adm.wait(0.5 if pending else 3)
        adm.close(wait=0.5)
        prober.join(10)
        ended_log, ended_how = self.server_ended(old_pid, pglog_offset)
        ended = ended_log or o["ended"]
        lost = None
        if ended is not None:
            lost = self.first_log(rep, offset, "leadership lost", wait=10)
            if lost is None:
                self.violation(f"{kind}: replica {rep.name}'s session ended during the "
                               f"{command} but it did not log 'leadership lost' within 10 s "
                               f"of RESUME")
        # Every pooled replica has a session again (after a SUSPEND longer than lock_timeout,
        # new ones: the server ended the idle ones).
        rejoin = self.wait_connected(POOLED, 20)
        if o["new"] is None:
            o2 = self.observe(old_pid, time.time())
            o["new"], o["lock"] = o2["new"], o2["lock"]
        if o["new"] is not None:
            f["after"], f["failover_s"] = o["new"][1], o["lock"] - t_inject
        else:
            f["after"] = rep.name
        if ended is not None:
            time.sleep(1.0)  # its next lock attempt: by now it knows whether it leads
        h = self.lock_holder()
        leader_metric = rep.metric("djinn_scheduler_leader")
        if leader_metric == 1 and (h is None or h[1] != rep.name):
            self.violation(f"{kind}: replica {rep.name} reports itself leader after RESUME "
                           f"while {h} holds the lock")
        new_server_conns = self.bouncer.log_since(bouncer_log).count("new connection to server")
        iso = {"kind": kind, "name": rep.name, "role": rep.role, "old_pid": old_pid,
               "t": t_inject, "held": t_held, "resume": t_resume, "hold": hold,
               "lock_at": o["lock"],
               "longer": longer, "ended": ended, "lost": lost, "check": time.time(), "fault": f}
        self.isolations.append(iso)
        got_through = probe.get("ok") and probe.get("end", 0) < t_resume
        if got_through:
            self.violation(f"{kind}: a new login through PgBouncer got through "
                           f"{probe['end'] - t_held:.2f}s into the {command}: it was not in "
                           f"effect")
        notes = []
        if command == "PAUSE":
            if ended is not None or o["new"] is not None:
                self.violation(f"pgbouncer_pause: the leader {rep.name} lost its session or its "
                               f"lock during a PAUSE in session pooling (session ended "
                               f"{fmt_s(ended and ended - t_inject)}, lock to {o['new']})")
            notes.append(("leader kept its session and lock" if ended is None and o["new"] is None
                          else "leader LOST its session or lock") + "; PAUSE "
                         + ("still waiting at RESUME" if pending else "returned during the hold")
                         + (f" (reply {reply[1]!r} {reply[0] - t_resume:+.2f}s after RESUME)"
                            if reply else ", never answered"))
        else:
            if longer:
                if ended is None:
                    self.violation(f"pgbouncer_suspend: the server did not end replica "
                                   f"{rep.name}'s session {old_pid} during a {hold:.1f}s "
                                   f"SUSPEND (lock_timeout {LOCK_TIMEOUT_S}s)")
                elif ended - t_held > LOCK_TIMEOUT_S + 1.0:
                    self.violation(f"pgbouncer_suspend: the server ended replica {rep.name}'s "
                                   f"session {ended - t_held:.2f}s into the SUSPEND, more than "
                                   f"lock_timeout {LOCK_TIMEOUT_S}s (+1 s)")
                if o["new"] is None:
                    self.violation(f"pgbouncer_suspend: no replica took the lock during a "
                                   f"{hold:.1f}s SUSPEND (the direct one should)")
                elif o["new"][1] in POOLED:
                    self.violation(f"pgbouncer_suspend: replica {o['new'][1]}, behind the "
                                   f"suspended PgBouncer, took the lock during the SUSPEND")
            notes.append(("server ended its session "
                          f"{fmt_s(ended - t_held)} into it ({ended_how or 'poll'})")
                         if ended else "its session survived")
            if lost:
                notes.append(f"{rep.name} stepped down {lost - t_resume:+.2f}s after RESUME "
                             f"({lost - t_held:.2f}s into the SUSPEND)")
            if o["two_leaders"]:
                two = o["two_leaders"]
                iso["two_leaders"] = (two[0] - t_held, two[1] - t_held)
                notes.append(f"{rep.name}'s /metrics said leader while {o['new'][1]} held the "
                             f"lock, from {two[0] - t_held:.2f}s to {two[1] - t_held:.2f}s into "
                             f"it")
        iso["probe_wait"] = probe.get("end", t_resume) - probe.get("start", t_held)
        notes.append(f"new login waited {iso['probe_wait']:.1f}s "
                     f"({'got through after RESUME' if probe.get('ok') else 'timed out'})")
        notes.append(f"{new_server_conns} new server connection(s) during it and after")
        notes.append(f"{', '.join(POOLED)} connected {fmt_s(rejoin)} after RESUME"
                     if rejoin is not None else "pooled replicas NOT reconnected")
        f["note"] = "; ".join(([f["note"]] if f["note"] else []) + notes)

    def note_failover(self, f, new, t_inject):
        if new is None:
            self.violation(f"{f['kind']}: no new leader within the bound")
            f["after"] = "NONE"
            return
        f["after"] = new[1]
        f["failover_s"] = time.time() - t_inject

    def violation(self, what):
        log("VIOLATION: " + what)
        self.violations.append(what)

    # ---- schedule

    def schedule(self):
        """Every fault type once in a seeded order, then seeded random ones until --duration."""
        first = list(FAULTS)
        self.rng.shuffle(first)
        return first

    def run(self, workload):
        kinds = self.schedule()
        end = time.time() + self.args.duration  # from the first fault: after any history load
        i = 0
        while True:
            if i < len(kinds):
                kind = kinds[i]
            elif time.time() < end - 10:
                kind = self.rng.choice(FAULTS)
            else:
                break
            i += 1
            time.sleep(self.rng.uniform(1.0, 4.0))
            self.check_replicas()
            self.inject(kind, workload)
        while time.time() < end:
            time.sleep(0.5)

    def check_replicas(self):
        for r in self.replicas.values():
            r.alive()
            if r.unexpected_exits:
                for inc, rc in r.unexpected_exits:
                    self.violation(f"replica {r.name} (start #{inc}) exited unexpectedly: {rc}")
                r.unexpected_exits.clear()
                r.start()

    # ---- settle and check

    def settle(self):
        deadline = time.time() + 90
        while time.time() < deadline:
            bj = self.builds_and_jobs()
            due = self.due_count()
            if bj and due == 0 and bj[0] == bj[1]:
                time.sleep(INTERVAL_S * 2 + 1)  # one more pass: nothing may change any more
                bj2 = self.builds_and_jobs()
                if bj2 == bj and self.due_count() == 0:
                    return True
            time.sleep(0.5)
        return False

    def check(self, workload):
        out = {}
        v = self.violations

        # Expected builds per cron from chaos_due, actual from cron_builds.
        rows = psql(f"""
WITH exp AS (SELECT cron_id, count(*) AS due, bool_or(bad) AS bad, max(scheduled) AS last_sched
             FROM chaos_due GROUP BY cron_id),
act AS (SELECT cron_id, count(*) AS n FROM cron_builds WHERE build_id > {LIVED_BUILDS}
        GROUP BY cron_id)
SELECT count(*), coalesce(sum(e.due), 0),
       count(*) FILTER (WHERE e.bad),
       coalesce(sum(CASE WHEN e.bad THEN 0 ELSE greatest(e.due - coalesce(a.n, 0), 0) END), 0),
       coalesce(sum(CASE WHEN e.bad THEN coalesce(a.n, 0)
                         ELSE greatest(coalesce(a.n, 0) - e.due, 0) END), 0),
       (SELECT count(*) FROM cron c LEFT JOIN exp x ON x.cron_id = c.id
        WHERE x.cron_id IS NULL AND c.id > {LIVED_CRONS}),
       (SELECT count(*) FROM chaos_due WHERE origin = 'rewind')
FROM exp e LEFT JOIN act a USING (cron_id)""")[0]
        out["crons"], out["due"], out["bad"], out["losses"], out["duplicates"], unknown, \
            out["rewinds"] = (int(x) for x in rows)
        if out["losses"]:
            lost = psql(f"""
SELECT e.cron_id, e.n, coalesce(a.n, 0) FROM
  (SELECT cron_id, count(*) AS n FROM chaos_due WHERE NOT bad GROUP BY cron_id) e
  LEFT JOIN (SELECT cron_id, count(*) AS n FROM cron_builds WHERE build_id > {LIVED_BUILDS}
             GROUP BY cron_id) a USING (cron_id)
WHERE e.n > coalesce(a.n, 0) LIMIT 20""")
            v.append(f"LOSS: {out['losses']} due (cron, scheduled time) without a build; "
                     f"(cron, due, builds): {lost}")
        if out["duplicates"]:
            dup = psql(f"""
SELECT a.cron_id, coalesce(e.n, 0), a.n FROM
  (SELECT cron_id, count(*) AS n FROM cron_builds WHERE build_id > {LIVED_BUILDS}
   GROUP BY cron_id) a
  LEFT JOIN (SELECT cron_id, count(*) FILTER (WHERE NOT bad) AS n FROM chaos_due
             GROUP BY cron_id) e USING (cron_id)
WHERE a.n > coalesce(e.n, 0) LIMIT 20""")
            v.append(f"DUPLICATE: {out['duplicates']} extra build(s); (cron, due, builds): {dup}")
        if unknown:
            v.append(f"{unknown} cron(s) the harness did not record")

        # Every build is a cron build, exactly once, whole, and scheduled no earlier than due.
        out["builds"] = int(scalar(f"SELECT count(*) FROM builds WHERE id > {LIVED_BUILDS}"))
        n = int(scalar("SELECT count(*) FROM builds b LEFT JOIN (SELECT build_id, count(*) AS n "
                       f"FROM cron_builds WHERE build_id > {LIVED_BUILDS} GROUP BY build_id) cb "
                       f"ON cb.build_id = b.id WHERE coalesce(cb.n, 0) <> 1 "
                       f"AND b.id > {LIVED_BUILDS}"))
        if n:
            v.append(f"{n} build(s) not linked to exactly one cron")
        h = LIVED_BUILDS
        half = psql(f"""
WITH t AS (SELECT build_id, count(*) AS n FROM build_triggers
           WHERE type = 'schedule' AND build_id > {h} GROUP BY build_id),
g AS (SELECT build_id, count(*) AS n FROM build_tags WHERE build_id > {h} GROUP BY build_id),
d AS (SELECT build_id, count(*) AS n FROM build_drivers WHERE build_id > {h} GROUP BY build_id),
s AS (SELECT build_id, count(*) AS n FROM build_stages WHERE build_id > {h} GROUP BY build_id),
j AS (SELECT build_id, count(*) AS n FROM build_jobs WHERE build_id > {h} GROUP BY build_id)
SELECT b.id FROM (SELECT * FROM builds WHERE id > {h}) b
LEFT JOIN t ON t.build_id = b.id LEFT JOIN g ON g.build_id = b.id
LEFT JOIN d ON d.build_id = b.id LEFT JOIN s ON s.build_id = b.id
LEFT JOIN j ON j.build_id = b.id
WHERE b.status <> 'queued' OR coalesce(t.n, 0) <> 1 OR coalesce(g.n, 0) <> 1
   OR coalesce(d.n, 0) <> 1 OR coalesce(s.n, 0) <> 2 OR coalesce(j.n, 0) <> 2
LIMIT 20""")
        out["half_written"] = len(half)
        if half:
            v.append(f"half-written builds (first ids): {[r[0] for r in half]}")
        # Each user's builds of the run are numbered after their history: h+1..h+n.
        nums = psql(f"""
SELECT b.user_id, count(*), count(DISTINCT b.number), min(b.number), max(b.number),
       coalesce(max(hist.last), 0)
FROM builds b LEFT JOIN chaos_history hist USING (user_id) WHERE b.id > {h}
GROUP BY b.user_id
HAVING count(*) <> count(DISTINCT b.number) OR min(b.number) <> coalesce(max(hist.last), 0) + 1
    OR max(b.number) <> coalesce(max(hist.last), 0) + count(*)""")
        if nums:
            v.append(f"build numbers not h+1..h+n per user after their h builds of history "
                     f"(user, builds, distinct, min, max, h): {nums}")
        early = psql(f"""
SELECT d.cron_id, d.scheduled, b.created_at FROM (
  SELECT cron_id, scheduled, row_number() OVER (PARTITION BY cron_id ORDER BY scheduled) AS k
  FROM chaos_due WHERE NOT bad) d
JOIN (SELECT cb.cron_id, b.created_at,
             row_number() OVER (PARTITION BY cb.cron_id ORDER BY b.id) AS k
      FROM cron_builds cb JOIN builds b ON b.id = cb.build_id WHERE b.id > {h}) b
  ON b.cron_id = d.cron_id AND b.k = d.k
WHERE b.created_at < d.scheduled LIMIT 10""")
        if early:
            v.append(f"builds made before their cron was due (cron, scheduled, created): {early}")

        # Every cron advanced: nothing due, next_run the midnight after its last run.
        adv = psql("""
SELECT c.id, c.next_run, c.prev_run, e.last_sched, e.bad FROM cron c
JOIN (SELECT cron_id, max(scheduled) AS last_sched, bool_or(bad) AS bad FROM chaos_due
      GROUP BY cron_id) e ON e.cron_id = c.id
WHERE c.next_run <= now()::timestamp
   OR c.next_run <> date_trunc('day', c.next_run)
   OR c.next_run <= e.last_sched
   OR (NOT e.bad AND (c.prev_run IS NULL OR c.prev_run < e.last_sched
                      OR c.next_run <> date_trunc('day', c.prev_run) + interval '1 day'))
LIMIT 10""")
        out["not_advanced"] = len(adv)
        if adv:
            v.append(f"crons not advanced correctly (id, next_run, prev_run, last due, bad): {adv}")

        # The queues: one job per build, no job without a build, the exact message bytes.
        r = Redis(timeout=10)
        try:
            keys = sorted(k.decode() for k in r.cmd("KEYS", "builds_*"))
            if set(keys) - {"builds_docker:active", "builds_docker:data"}:
                v.append(f"unexpected queue keys: {keys}")
            active = [x.decode() for x in r.cmd("LRANGE", "builds_docker:active", 0, -1)]
            data = r.cmd("HGETALL", "builds_docker:data")
            data = {data[i].decode(): data[i + 1] for i in range(0, len(data), 2)}
            markers = {int(k.decode().rsplit(":", 1)[1])
                       for k in scan_keys(r, "djinn-scheduler:enqueued:*")}
        finally:
            r.close()
        out["jobs"] = len(active)
        if len(set(active)) != len(active):
            v.append(f"{len(active) - len(set(active))} job id(s) twice in builds_docker:active")
        if set(active) != set(data):
            v.append(f"active list and data hash differ: {len(set(active) - set(data))} id(s) "
                     f"without data, {len(set(data) - set(active))} data without an active id")
        queued, bad_messages = [], []
        for job_id in active:
            msg = data.get(job_id)
            if msg is None:
                continue
            try:
                host, build = decode_message(msg, job_id)
            except (ValueError, IndexError, UnicodeDecodeError) as e:
                bad_messages.append(f"{job_id}: {e}")
                continue
            if host != "djinn-scheduler":
                v.append(f"job {job_id}: host {host!r}")
            queued.append(build)
        if bad_messages:
            v.append(f"{len(bad_messages)} queue message(s) not as Djinn writes them, e.g. "
                     f"{bad_messages[:3]}")
        build_ids = {int(x[0]) for x in psql(f"SELECT id FROM builds WHERE id > {h}")}
        dup_jobs = len(queued) - len(set(queued))
        out["duplicate_jobs"] = dup_jobs
        out["builds_without_job"] = len(build_ids - set(queued))
        out["jobs_without_build"] = len(set(queued) - build_ids)
        if dup_jobs:
            v.append(f"DUPLICATE JOB: {dup_jobs} build(s) enqueued more than once")
        if out["builds_without_job"]:
            v.append(f"LOSS: {out['builds_without_job']} build(s) without a queue job: "
                     f"{sorted(build_ids - set(queued))[:20]}")
        if out["jobs_without_build"]:
            v.append(f"{out['jobs_without_build']} queue job(s) without a build: "
                     f"{sorted(set(queued) - build_ids)[:20]}")
        if build_ids - markers:
            v.append(f"{len(build_ids - markers)} build(s) without an enqueue marker")

        # Fencing of the frozen leaders: no write by the resumed replica's role while another
        # replica held the lock (from the PostgreSQL statement log).
        writes = [w for w in pg_writes() if w[1].startswith("chaos_")]
        out["writes_logged"] = len(writes)
        if not writes:
            v.append("no write of any replica found in the PostgreSQL log: fencing unchecked")
        for fz in self.freezes:
            bad = [w for w in writes if w[1] == fz["role"] and fz["resume"] <= w[0] <= fz["check"]]
            fz["writes_after_resume"] = len(bad)
            if bad:
                v.append(f"FENCING: replica {fz['name']} wrote {len(bad)} statement(s) after "
                         f"SIGCONT while another replica held the lock, e.g. {bad[0][2][:200]}")
            frozen = [w for w in writes if w[3] == fz["old_pid"] and w[0] > fz["stop"] + 0.5]
            if frozen:
                v.append(f"FENCING: backend {fz['old_pid']} of frozen replica {fz['name']} "
                         f"wrote after it was frozen: {frozen[0][2][:200]}")

        self.check_fencing(out, writes)

        # Exactly one leader at the end, seen the same by the replicas and the database.
        leaders = [n for n, rep in self.replicas.items() if rep.alive()
                   and rep.metric("djinn_scheduler_leader") == 1]
        holder = self.lock_holder()
        if len(leaders) != 1 or holder is None or holder[1] != leaders[0]:
            v.append(f"at the end: leaders by /metrics {leaders}, lock holder {holder}")
        out["leader_end"] = leaders[0] if len(leaders) == 1 else str(leaders)
        out["workload_failed_calls"] = workload.failed_calls
        missing = set(FAULTS) - {f["kind"] for f in self.faults}
        if missing:
            v.append(f"fault types never injected: {sorted(missing)}")
        return out

    def check_fencing(self, out, writes):
        """Who committed which build, and when: from the statement log (pg_build_writers) and
        the commit timestamps (track_commit_timestamp). Every build must be attributed, else
        the fencing checks of the partitions and the PgBouncer faults would check nothing."""
        if not self.partitions and not self.isolations:
            return
        v = self.violations
        writers = pg_build_writers()
        commits, no_ts, unattributed = [], 0, []
        for bid, ts in psql("SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) "
                            f"FROM builds WHERE id > {LIVED_BUILDS}"):
            if ts == "":
                no_ts += 1
                continue
            commits.append((float(ts), int(bid)))
            if int(bid) not in writers:
                unattributed.append(int(bid))
        commits.sort()
        out["builds_attributed"] = len(commits) - len(unattributed)
        if no_ts:
            v.append(f"{no_ts} build(s) without a commit timestamp: the fencing of the "
                     f"partitioned and PgBouncer-isolated leaders is unchecked")
        if unattributed or not commits:
            v.append(f"{len(unattributed)} of {len(commits)} build(s) not attributed to a backend "
                     f"by the PostgreSQL log (first ids {sorted(unattributed)[:10]}): the "
                     f"fencing of the partitioned and PgBouncer-isolated leaders is unchecked")
        self.check_partitions(out, writes, writers, commits)
        self.check_isolations(out, writes, writers, commits)

    def check_isolations(self, out, writes, writers, commits):
        """The leaders cut off by a PgBouncer fault. Once the server ended a leader's session
        (PgBouncer killed: at once; SUSPEND longer than lock_timeout: by idle_session_timeout),
        it holds no lock: no build written by that backend may commit after it (+ CUT_GRACE_S),
        and no build or write statement of its role may reach the server until it has logged
        'leadership lost' (only then may it compete, and commit, again). A PAUSE leaves the
        leader's session alone: it must have dispatched during it."""
        v = self.violations

        def by(b, pred):
            return any(pred(r, pid) for r, pid in writers.get(b, ()))

        for iso in self.isolations:
            role, old, at = iso["role"], iso["old_pid"], iso["fault"]["t"]
            if iso["kind"] == "pgbouncer_pause":
                # By the leader's role, not its lock session's backend: with dispatch sessions
                # its builds are written by other backends of the same replica.
                during = [ts for ts, b in commits if iso["held"] <= ts <= iso["resume"]
                          and by(b, lambda r, pid: r == role)]
                iso["commits_during"] = len(during)
                iso["fault"]["note"] += f"; leader committed {len(during)} build(s) during it"
                # Crons fall due every second and the leader ticks every INTERVAL_S: a pause
                # this long holds a tick with due crons.
                if not during and iso["resume"] - iso["held"] >= INTERVAL_S + 1.5:
                    v.append(f"{iso['kind']} at {at:.1f}s: leader {iso['name']} committed "
                             f"nothing during the {iso['resume'] - iso['held']:.1f}s PAUSE "
                             f"(its session is untouched by PAUSE in session pooling)")
            if iso["ended"] is None:
                continue
            start = iso["ended"] + CUT_GRACE_S
            end = iso["lost"] if iso["lost"] is not None else iso["check"]
            late = [(ts, b) for ts, b in commits if ts > start
                    and by(b, lambda r, pid: r == role and pid == old)]
            early = [(ts, b) for ts, b in commits if start < ts <= end
                     and by(b, lambda r, pid: r == role)]
            stmts = [w for w in writes if w[1] == role and start < w[0] <= end]
            iso["commits_after"] = len({b for _, b in late + early})
            iso["writes_after"] = len(stmts)
            if late:
                v.append(f"FENCING: {iso['kind']} at {at:.1f}s: backend {old} of replica "
                         f"{iso['name']} committed {len(late)} build(s) after the server ended "
                         f"its session, the first (build {late[0][1]}) "
                         f"{late[0][0] - iso['ended']:.2f}s after")
            if early:
                v.append(f"FENCING: {iso['kind']} at {at:.1f}s: replica {iso['name']} committed "
                         f"{len(early)} build(s) after its session ended and before it stepped "
                         f"down, the first (build {early[0][1]}) "
                         f"{early[0][0] - iso['ended']:.2f}s after the end")
            if stmts:
                v.append(f"FENCING: {iso['kind']} at {at:.1f}s: {len(stmts)} write "
                         f"statement(s) of replica {iso['name']} reached the server after its "
                         f"session ended and before it stepped down, e.g. "
                         f"{stmts[0][0] - iso['ended']:.2f}s after: {stmts[0][2][:120]}")
            mine = [ts for ts, b in commits if ts <= start
                    and by(b, lambda r, pid: r == role and pid == old)]
            iso["last_commit_s"] = (max(mine) - iso["ended"]) if mine else None
        out["isolated_commits_after"] = sum(i.get("commits_after", 0) for i in self.isolations)

    def check_partitions(self, out, writes, writers, commits):
        """Fencing of the partitioned leaders, from the database: no build committed by the
        partitioned replica from the cut until it was seen back as a standby (its old backend
        is gone by then: checked during the cut), no write statement of it reached the server
        while the link was cut; and the time from the cut to the standby's first committed
        build."""
        if not self.partitions:
            return
        v = self.violations
        for p in self.partitions:
            cut, after_cut, end = p["cut"], p["cut"] + CUT_GRACE_S, p["check"]
            role, old = p["role"], p["sessions"]

            def by(b, pred):
                return any(pred(r, pid) for r, pid in writers.get(b, ()))

            late = [(ts, b) for ts, b in commits
                    if after_cut < ts <= end and by(b, lambda r, pid: r == role)]
            p["commits_after"] = len(late)
            if late:
                ts, b = late[0]
                v.append(f"FENCING: partitioned replica {p['name']} committed {len(late)} build(s)"
                         f" after the cut, the first (build {b}) {ts - cut:.2f}s after it")
            mine = [ts for ts, b in commits
                    if ts <= after_cut and by(b, lambda r, pid: r == role and pid in old)]
            p["last_commit_s"] = (max(mine) - cut) if mine else None
            stmts = [w for w in writes if w[1] == role and after_cut < w[0] <= p["restore"]]
            p["writes_during_cut"] = len(stmts)
            if stmts:
                v.append(f"FENCING: {len(stmts)} write statement(s) of partitioned replica "
                         f"{p['name']} reached the server while its link was cut, e.g. at "
                         f"{stmts[0][0] - cut:.2f}s after the cut: {stmts[0][2][:120]}")
            first = next(((ts, b) for ts, b in commits
                          if ts > cut and not by(b, lambda r, pid: r == role)), None)
            if first is None:
                p["first_dispatch_s"], p["first_by"] = None, None
                v.append(f"partition at {p['fault']['t']:.1f}s: no build committed by another "
                         f"replica after the cut")
            else:
                p["first_dispatch_s"] = first[0] - cut
                p["first_by"] = ",".join(sorted({r.replace("chaos_", "")
                                                 for r, _ in writers.get(first[1], ())}))
                if p["new"] and p["first_by"] != p["new"][1]:
                    v.append(f"partition at {p['fault']['t']:.1f}s: the first build after the "
                             f"cut was committed by {p['first_by']}, not by the new lock holder "
                             f"{p['new'][1]}")
            p["fault"]["note"] += (f"; standby's first dispatch {fmt_s(p['first_dispatch_s'])} "
                                   f"after the cut")
        out["partition_first_dispatch"] = [p["first_dispatch_s"] for p in self.partitions]

    def report(self, out):
        print()
        print(f"Faults injected (seed {self.args.seed}, duration {self.args.duration}s; "
              f"interval {INTERVAL_S}s, batch_size {BATCH_SIZE}, lock_timeout {LOCK_TIMEOUT_S}s, "
              f"retry_interval {RETRY_S}s)")
        print()
        print("| # | t (s) | fault | parameter | burst taken when injected | leader before | "
              "leader after | new leader after (s) | note |")
        print("|---|---|---|---|---|---|---|---|---|")
        for i, f in enumerate(self.faults, 1):
            fo = "-" if f["failover_s"] is None else f"{f['failover_s']:.2f}"
            note = "; ".join(x for x in (f["note"], f.get("later", ""),
                                         f.get("later_standby", "")) if x)
            print(f"| {i} | {f['t']:.1f} | {f['kind']} | {f['param']} | {f['burst']} | "
                  f"{f['before']} | {f['after']} | {fo} | {note} |")
        print()
        by_kind = {}
        for f in self.faults:
            by_kind.setdefault(f["kind"], []).append(f["failover_s"])
        print("| fault | count | new leader after: min / max (s) |")
        print("|---|---|---|")
        for k in FAULTS:
            xs = [x for x in by_kind.get(k, []) if x is not None]
            rng = f"{min(xs):.2f} / {max(xs):.2f}" if xs else "-"
            print(f"| {k} | {len(by_kind.get(k, []))} | {rng} |")
        print()
        if self.partitions:
            print(f"Partitions (replica {PART_REPLICA} in {NETNS}, {NET_NS_ADDR} <-> "
                  f"{NET_HOST_ADDR}; blackhole qdisc on both ends; times in s after the cut)")
            print()
            print("| t (s) | cut for (s) | leader after | server ended its session | standby "
                  "holds the lock (database / its log) | standby's first dispatch (by) | "
                  "partitioned leader stepped "
                  "down (its log) | reconnected after the restore | its last commit before the "
                  "cut | its commits after the cut |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            for p in self.partitions:
                last = p.get("last_commit_s")
                print(f"| {p['fault']['t']:.1f} | {p['hold']:.1f} | {p['fault']['after']} | "
                      f"{fmt_s(p['ended_s'])} ({p['ended_how'] or 'not logged'}) | "
                      f"{fmt_s(p['lock_s'])} / "
                      f"{fmt_s(p.get('acquired_s'))} | "
                      f"{fmt_s(p.get('first_dispatch_s'))} ({p.get('first_by') or '?'}) | "
                      f"{fmt_s(p['stepped_down_s'])} | {fmt_s(p['rejoin_s'])} | "
                      f"{'-' if last is None else f'{last:+.3f}s'} | "
                      f"{p.get('commits_after', '?')} |")
            print()
            for name, key in (("server ended the session", "ended_s"),
                              ("standby holds the lock (database, sampled)", "lock_s"),
                              ("standby logs 'leadership acquired'", "acquired_s"),
                              ("standby's first dispatch", "first_dispatch_s"),
                              ("partitioned leader stepped down", "stepped_down_s")):
                xs = [p[key] for p in self.partitions if p.get(key) is not None]
                if xs:
                    print(f"cut -> {name}: min {min(xs):.2f} / median "
                          f"{statistics.median(xs):.2f} / max {max(xs):.2f} s")
            print()
        if self.isolations:
            print("PgBouncer faults (replicas " + ", ".join(POOLED) + " through PgBouncer "
                  f"{self.bouncer.port}, the others direct; times in s after the fault, for "
                  "PAUSE/SUSPEND after the command took effect)")
            print()
            print("| t (s) | fault | parameter | leader before -> after | server ended its "
                  "session | new leader | old leader stepped down | its /metrics said leader "
                  "while another held the lock | new login waited | its commits during the "
                  "PAUSE | its commits after its session ended |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for i in self.isolations:
                f = i["fault"]
                base = i.get("held", i["t"])
                two = i.get("two_leaders")
                print(f"| {f['t']:.1f} | {i['kind']} | {f['param']} | {f['before']} -> "
                      f"{f['after']} | {fmt_s(i['ended'] and i['ended'] - base)} | "
                      f"{fmt_s(i['lock_at'] and i['lock_at'] - base)} | "
                      f"{fmt_s(i['lost'] and i['lost'] - base)} | "
                      f"{f'{two[0]:.2f}-{two[1]:.2f}' if two else '-'} | "
                      f"{fmt_s(i.get('probe_wait'))} | {i.get('commits_during', '-')} | "
                      f"{i.get('commits_after', '-')} |")
            print()
        print("| outcome | value |")
        print("|---|---|")
        rows = [
            ("history loaded first (builds / crons not due; not counted below)",
             f"{LIVED_BUILDS} / {LIVED_CRONS}" if self.args.lived else "-"),
            ("crons made due (distinct)", out.get("crons")),
            ("due (cron, scheduled time) pairs, rewinds included", out.get("due")),
            ("  of which rewinds of dispatched crons", out.get("rewinds")),
            ("  crons with a broken manifest (must be skipped)", out.get("bad")),
            ("builds", out.get("builds")),
            ("queue jobs", out.get("jobs")),
            ("losses (due without build, build without job)",
             (out.get("losses") or 0) + (out.get("builds_without_job") or 0)),
            ("duplicates (extra builds, extra jobs)",
             (out.get("duplicates") or 0) + (out.get("duplicate_jobs") or 0)),
            ("jobs without a build", out.get("jobs_without_build")),
            ("half-written builds", out.get("half_written")),
            ("crons not advanced correctly", out.get("not_advanced")),
            ("writes by a resumed (frozen) leader", sum(f.get("writes_after_resume", 0)
                                                        for f in self.freezes)),
            ("commits by a partitioned leader after the cut",
             sum(p.get("commits_after", 0) for p in self.partitions) if self.partitions
             else "-"),
            ("commits by a PgBouncer-isolated leader after its session ended",
             out.get("isolated_commits_after", "-") if self.isolations else "-"),
            ("builds attributed to a backend (statement log)",
             out.get("builds_attributed", "-")),
            ("write statements logged by the replicas", out.get("writes_logged")),
            ("leader at the end", out.get("leader_end")),
            ("wall time (s)", f"{time.time() - T0:.0f}"),
            ("invariant violations", len(self.violations)),
        ]
        for k, val in rows:
            print(f"| {k} | {val} |")
        print()

    def teardown(self):
        if NETNS:
            try:
                if self.cut_active or net.is_cut(NETNS, NET_HOST_IF, NET_NS_IF):
                    net.restore(NETNS, NET_HOST_IF, NET_NS_IF)
                    log("link of the partitioned replica restored")
            except (net.NetError, OSError, subprocess.SubprocessError) as e:
                log(f"HARNESS ERROR: cannot restore the link: {e}")
        if self.bouncer is not None:
            # A suspended or paused PgBouncer would hold the replicas' drain: resume it first.
            try:
                if self.bouncer_admin is not None:
                    self.bouncer_admin.send("RESUME")
                    self.bouncer_admin.wait(5)
                    self.bouncer_admin.close()
                    log("PgBouncer resumed")
                if self.bouncer_paused:
                    self.bouncer.admin("RESUME")
                    log("PgBouncer resumed")
            except OSError as e:
                log(f"HARNESS ERROR: cannot resume PgBouncer: {e}")
        for r in self.replicas.values():
            r.stop()
        if self.bouncer is not None:
            self.bouncer.stop()
        self.redis.stop()
        if self.standby_thread is not None:
            self.standby_thread.join(120)
        # The clusters the harness made (standbys, a promoted one); the one in PGDATA is
        # services.sh's to stop.
        for c in {PG.data: PG, **({STANDBY.data: STANDBY} if STANDBY else {})}.values():
            if c.data != PGDATA and c.running():
                c.pg_ctl("-m", "immediate", "stop", timeout=60)


def scan_keys(r, pattern):
    cursor = b"0"
    out = []
    while True:
        cursor, keys = r.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        out.extend(keys)
        if cursor == b"0":
            return out


def gob_uint(b, i):
    c = b[i]
    i += 1
    if c < 0x80:
        return c, i
    n = 256 - c
    v = 0
    for _ in range(n):
        v = (v << 8) | b[i]
        i += 1
    return v, i


def msgpack_value(m, i):
    """One msgpack value of the kinds a curlyq message uses: str, bin, int, nil, bool."""
    c = m[i]
    if 0xa0 <= c <= 0xbf:
        n = c - 0xa0
        return m[i + 1:i + 1 + n].decode(), i + 1 + n
    if c in (0xd9, 0xc4):
        n = m[i + 1]
        v = m[i + 2:i + 2 + n]
        return (v.decode() if c == 0xd9 else bytes(v)), i + 2 + n
    if c in (0xda, 0xc5):
        n = int.from_bytes(m[i + 1:i + 3], "big")
        v = m[i + 3:i + 3 + n]
        return (v.decode() if c == 0xda else bytes(v)), i + 3 + n
    if c <= 0x7f:
        return c, i + 1
    if c in (0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3):
        n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[c]
        return int.from_bytes(m[i + 1:i + 1 + n], "big", signed=c >= 0xd0), i + 1 + n
    if c == 0xc0:
        return None, i + 1
    if c in (0xc2, 0xc3):
        return c == 0xc3, i + 1
    raise ValueError(f"msgpack type 0x{c:02x} at {i}")


def decode_message(msg, job_id):
    """A curlyq message: a msgpack map {ID: the job id, Data: the gob payload[, Attempt: 0]};
    the gob stream is a type definition, then the value {Host string; BuildID int64}."""
    if not msg or not 0x80 <= msg[0] <= 0x8f:
        raise ValueError("not a msgpack map")
    fields, i = {}, 1
    for _ in range(msg[0] - 0x80):
        k, i = msgpack_value(msg, i)
        fields[k], i = msgpack_value(msg, i)
    if i != len(msg):
        raise ValueError("trailing bytes")
    if fields.get("ID") != job_id:
        raise ValueError("message ID differs from its key")
    if fields.get("Attempt", 0) != 0:
        raise ValueError(f"Attempt {fields['Attempt']}")
    if set(fields) - {"ID", "Data", "Attempt"}:
        raise ValueError(f"unexpected fields {sorted(fields)}")
    b = fields.get("Data")
    if not isinstance(b, bytes):
        raise ValueError("no Data")
    i = 0
    length, i = gob_uint(b, i)
    i += length
    vlen, i = gob_uint(b, i)
    end = i + vlen
    typ, i = gob_uint(b, i)
    if typ != 130:
        raise ValueError("gob type id")
    host, build, field = "", None, -1
    while i < end:
        delta, i = gob_uint(b, i)
        if delta == 0:
            break
        field += delta
        if field == 0:
            sl, i = gob_uint(b, i)
            host = b[i:i + sl].decode()
            i += sl
        elif field == 1:
            u, i = gob_uint(b, i)
            build = ~(u >> 1) if u & 1 else u >> 1
    if i != end or build is None:
        raise ValueError("gob value")
    return host, build


def pg_log_lines():
    """The lines of every cluster's log, oldest cluster first (after a pg_failover the
    statements of the old primary are in its log, those of the promoted standby in its own)."""
    for path in PG_LOGS:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            yield from f


PG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\] (\S*) "
                     r"LOG:  ((?:statement|execute [^:]*): .*)$")


def pg_writes():
    """(time, role, statement, backend pid) of every logged write statement."""
    out = []
    for line in pg_log_lines():
        m = PG_LINE.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
            tzinfo=dt.timezone.utc).timestamp()
        out.append((t, m.group(3), m.group(4), int(m.group(2))))
    return out


PG_ANY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC \[(\d+)\] (\S*) "
                    r"([A-Z]+):  (.*)$")
INSERT_BUILDS = re.compile(r"^\s*INSERT INTO (?:public\.)?builds\b", re.I | re.M)
FIRST_PARAM = re.compile(r"^parameters: \$1 = '\{([0-9,]*)\}'")


def pg_build_writers():
    """Which backend wrote which build, from the PostgreSQL log: each INSERT INTO builds is
    logged (log_statement = mod) with its parameters, $1 being the array of build ids. Returns
    {build id: {(role, backend pid), ...}} (a batch redone on the same backend logs its ids
    twice; a statement whose transaction did not commit logs ids that never became builds)."""
    writers = {}
    cur = None  # [pid, role, text] of the latest LOG line of a statement, continued
    for line in pg_log_lines():
        m = PG_ANY.match(line)
        if m is None:
            if cur is not None and line.startswith("\t") and len(cur[2]) < 400:
                cur[2] += line
            continue
        pid, role, level, rest = int(m.group(2)), m.group(3), m.group(4), m.group(5)
        if level == "LOG" and (rest.startswith("execute ") or rest.startswith("statement: ")):
            cur = [pid, role, rest.split(": ", 1)[1] if ": " in rest else rest]
            continue
        if level == "DETAIL" and cur is not None and cur[0] == pid \
                and INSERT_BUILDS.search(cur[2]):
            pm = FIRST_PARAM.match(rest)
            if pm and pm.group(1):
                for x in pm.group(1).split(","):
                    writers.setdefault(int(x), set()).add((role, pid))
        cur = None
    return writers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=int, default=120)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--faults", default="",
                    help=f"comma-separated fault types (default: all of {', '.join(ALL_FAULTS)})")
    ap.add_argument("--lived", type=int, default=0, metavar="BUILDS",
                    help="load BUILDS finished builds of history (and BUILDS/10 crons that are "
                         "not due) before the replicas start: a database that has lived")
    ap.add_argument("--dispatch-sessions", type=int, default=1, metavar="K",
                    help="database.dispatch_sessions of every replica: each batch split across K "
                         "sessions (default 1)")
    ap.add_argument("--direct", action="store_true",
                    help="every replica connects to PostgreSQL directly: no PgBouncer (and none "
                         "of its faults)")
    args = ap.parse_args()
    global FAULTS, POOLED, POOLER_SKIP, FAILOVER_SKIP  # pylint: disable=global-statement
    global DISPATCH_SESSIONS_LINE  # pylint: disable=global-statement
    if not 1 <= args.dispatch_sessions <= 32:
        print("chaos: --dispatch-sessions must be between 1 and 32", file=sys.stderr)
        return 2
    if args.dispatch_sessions > 1:
        DISPATCH_SESSIONS_LINE = f"\n    dispatch_sessions {args.dispatch_sessions}"
    wanted = [k.strip() for k in args.faults.split(",") if k.strip()] or list(ALL_FAULTS)
    unknown = sorted(set(wanted) - set(ALL_FAULTS))
    if unknown:
        print(f"chaos: unknown fault type(s) {unknown}; known: {', '.join(ALL_FAULTS)}",
              file=sys.stderr)
        return 2
    POOLER_SKIP = "--direct given" if args.direct else (pooler.skip_reason() or "")
    if POOLER_SKIP:
        asked = sorted(set(wanted) & set(POOLER_FAULTS))
        if asked and args.faults:
            print(f"chaos: the fault(s) {', '.join(asked)} were asked for but cannot run: "
                  f"{POOLER_SKIP}", file=sys.stderr)
            return 2
        wanted = [k for k in wanted if k not in POOLER_FAULTS]
    else:
        POOLED = ("a", "b")
    for tool in ("pg_basebackup", "pg_controldata"):
        if not os.access(os.path.join(PGBIN, tool), os.X_OK):
            FAILOVER_SKIP = f"{os.path.join(PGBIN, tool)} not found"
    if FAILOVER_SKIP:
        if "pg_failover" in wanted and args.faults:
            print(f"chaos: the pg_failover fault was asked for but cannot run: {FAILOVER_SKIP}",
                  file=sys.stderr)
            return 2
        wanted = [k for k in wanted if k != "pg_failover"]
    if "partition" in wanted and PARTITION_SKIP:
        if args.faults:
            print(f"chaos: the partition fault was asked for but cannot run: {PARTITION_SKIP}",
                  file=sys.stderr)
            return 2
        wanted.remove("partition")
    FAULTS = tuple(k for k in ALL_FAULTS if k in wanted)

    def interrupted(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    log(f"seed {args.seed}, duration {args.duration}s, dispatch sessions {args.dispatch_sessions}, faults {', '.join(FAULTS)}, run directory "
        f"{RUNDIR}")
    if PARTITION_SKIP and "partition" not in FAULTS:
        log(f"the partition fault is SKIPPED: {PARTITION_SKIP}")
    if POOLER_SKIP:
        log(f"no PgBouncer, every replica connects directly; the PgBouncer faults are SKIPPED: "
            f"{POOLER_SKIP}")
    chaos = Chaos(args)
    workload = Workload(random.Random(args.seed * 7919 + 1))
    out = {}
    code = 0
    try:
        chaos.setup()
        workload.start()
        chaos.run(workload)
        chaos.join_measurements()
        chaos.wait_standby()
        log("stopping the workload and the faults; letting the fleet settle")
        workload.stop_flag.set()
        workload.join(30)
        chaos.check_replicas()
        if not chaos.settle():
            chaos.violation("the fleet did not settle within 90 s (crons still due or builds "
                            "without a job)")
        out = chaos.check(workload)
    except HarnessError as e:
        log(f"HARNESS ERROR: {e}")
        code = 2
    except Exception as e:  # pylint: disable=broad-except
        log(f"HARNESS ERROR: {type(e).__name__}: {e}")
        code = 2
    except (Interrupted, KeyboardInterrupt) as e:
        log(f"HARNESS ERROR: interrupted ({e or 'SIGINT'}): cleaning up")
        code = 2
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # let the cleanup finish
        workload.stop_flag.set()
        chaos.teardown()
    chaos.report(out)
    if chaos.violations:
        print("FAILED:")
        for v in chaos.violations:
            print("  - " + v)
        return 1
    if code:
        return code
    firsts = ", ".join(fmt_s(x) for x in out.get("partition_first_dispatch", []))
    print(f"PASSED: {out.get('due')} due (cron, time) pairs -> {out.get('builds')} builds, "
          f"{out.get('jobs')} jobs; 0 lost, 0 duplicated; {len(chaos.faults)} faults"
          + (f"; partition: cut -> standby's first dispatch {firsts}" if firsts else
             "; partition fault skipped: " + PARTITION_SKIP if PARTITION_SKIP else "")
          + ("; PgBouncer faults skipped: " + POOLER_SKIP if POOLER_SKIP else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
