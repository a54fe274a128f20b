"""PgBouncer in front of the chaos harness's PostgreSQL (Python 3 standard library only).

Debian's PgBouncer (1.18 here), as an operator would run it in front of the scheduler:
`pool_mode = session`, `auth_type = md5` with an `auth_file` of "role" "password" lines,
`admin_users = postgres` for the admin console, PgBouncer's defaults for everything else
(server_login_retry 15 s, default_pool_size 20, server_reset_query DISCARD ALL...). It listens on
127.0.0.1 only; it runs as the postgres user (it refuses to run as root), in a directory of the
harness's run directory, not daemonized: the harness holds its pid, kills it and starts it again
on the same port. Its log is `pgbouncer/pgbouncer.log` in the run directory.

The admin console (`psql -h 127.0.0.1 -p PORT -U postgres pgbouncer`) takes PAUSE, SUSPEND and
RESUME. AdminSession keeps one console session open: after SUSPEND, PgBouncer accepts no new
connection at all, so the RESUME must come on the session that suspended it.
"""

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time


class PoolerError(Exception):
    pass


def binary():
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)


def skip_reason():
    if binary() is None:
        return "pgbouncer not found (apt-get install pgbouncer; it is in dist/test-deps.txt)"
    if os.geteuid() == 0:
        try:
            import pwd  # pylint: disable=import-outside-toplevel
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run PgBouncer as"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chown_postgres(path):
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


class PgBouncer:
    def __init__(self, rundir, pg_host, pg_port, db, users, admin_password):
        """users: {role: password} for the auth_file (md5 to PgBouncer; PgBouncer logs in to
        PostgreSQL with the same password, scram there)."""
        self.dir = os.path.join(rundir, "pgbouncer")
        os.makedirs(self.dir, exist_ok=True)
        _chown_postgres(self.dir)
        self.port = free_port()
        self.db = db
        self.pg_host = pg_host
        self.pg_port = pg_port
        self.admin_password = admin_password
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.log = os.path.join(self.dir, "pgbouncer.log")
        self.pidfile = os.path.join(self.dir, "pgbouncer.pid")
        self.proc = None
        self.starts = 0
        auth = os.path.join(self.dir, "userlist.txt")
        with open(auth, "w", encoding="utf-8") as f:
            for role, password in users.items():
                f.write(f'"{role}" "{password}"\n')
            f.write(f'"postgres" "{admin_password}"\n')
        os.chmod(auth, 0o600)
        _chown_postgres(auth)
        self.write_ini(pg_port)

    def write_ini(self, pg_port):
        self.pg_port = pg_port
        with open(self.ini, "w", encoding="utf-8") as f:
            f.write(f"""[databases]
{self.db} = host={self.pg_host} port={pg_port} dbname={self.db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = md5
auth_file = {os.path.join(self.dir, "userlist.txt")}
pool_mode = session
admin_users = postgres
logfile = {self.log}
pidfile = {self.pidfile}
""")
        _chown_postgres(self.ini)

    def start(self, timeout=15):
        if self.proc is not None and self.proc.poll() is None:
            raise PoolerError("PgBouncer is already running")
        # A pidfile left by a killed PgBouncer is ours (our directory): remove it rather than
        # rely on PgBouncer's stale-pidfile check.
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass
        self.starts += 1
        err = open(os.path.join(self.dir, "stderr.log"), "ab")  # pylint: disable=consider-using-with
        kw = {"user": "postgres", "group": "postgres", "extra_groups": []} \
            if os.geteuid() == 0 else {}
        try:
            self.proc = subprocess.Popen([binary(), self.ini], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, **kw)
        finally:
            err.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise PoolerError(f"pgbouncer exited {self.proc.returncode} at start: "
                                  f"{self.tail()}")
            ok, _ = self.admin("SHOW VERSION", timeout=2)
            if ok:
                return
            time.sleep(0.05)
        raise PoolerError(f"pgbouncer did not answer on 127.0.0.1:{self.port} within "
                          f"{timeout}s: {self.tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self, sig=signal.SIGKILL, timeout=10):
        """SIGKILL: a crash; SIGTERM: PgBouncer's immediate shutdown (every client and server
        connection closed at once)."""
        if not self.alive():
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        os.kill(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        self.kill(signal.SIGTERM)

    def admin_cmd(self):
        return ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                "postgres", "-d", "pgbouncer"]

    def admin_env(self, connect_timeout=3):
        return dict(os.environ, PGPASSWORD=self.admin_password,
                    PGCONNECT_TIMEOUT=str(connect_timeout))

    def admin(self, sql, timeout=5):
        """One admin console command on a connection of its own: (ok, output)."""
        try:
            p = subprocess.run(self.admin_cmd() + ["-c", sql], capture_output=True, text=True,
                               timeout=timeout, env=self.admin_env(min(3, max(1, int(timeout)))),
                               check=False)
        except subprocess.TimeoutExpired:
            return False, f"timed out after {timeout}s"
        return p.returncode == 0, (p.stdout + p.stderr).strip()

    def repoint(self, pg_port):
        """Points the database at another PostgreSQL port and reloads (an orchestrator's
        failover hook does the same)."""
        self.write_ini(pg_port)
        ok, out = self.admin("RELOAD")
        if not ok:
            raise PoolerError(f"pgbouncer RELOAD failed: {out}")

    def tail(self, n=5):
        out = []
        for path in (os.path.join(self.dir, "stderr.log"), self.log):
            try:
                with open(path, "r", encoding="utf-8", errors="replace") as f:
                    out += f.read().splitlines()[-n:]
            except OSError:
                pass
        return " | ".join(out[-n:]) or "(no log)"

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log, "r", encoding="utf-8", errors="replace") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return ""


class AdminSession:
    """One admin console session kept open: send() a command, wait() for its reply (PAUSE does
    not reply before every server connection is released; after SUSPEND no new connection is
    accepted, so RESUME goes on this session)."""

    MARK = "@@chaos-admin-done"

    def __init__(self, bouncer):
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            bouncer.admin_cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=bouncer.admin_env(), bufsize=1)
        self.replies = queue.Queue()
        self.sent_at = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = []
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line == self.MARK:
                self.replies.put((time.time(), " ".join(buf).strip()))
                buf = []
            else:
                buf.append(line)
        self.replies.put((time.time(), ("session ended: " + " ".join(buf)).strip()))

    def send(self, sql):
        self.sent_at = time.time()
        self.proc.stdin.write(f"{sql};\n\\echo {self.MARK}\n")
        self.proc.stdin.flush()

    def wait(self, timeout):
        """(time of the reply, reply text), or None if it has not come within timeout."""
        try:
            return self.replies.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self, wait=5.0):
        """Ends the session; a psql still waiting for a reply (a PAUSE that never completes)
        is terminated after `wait` s."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
