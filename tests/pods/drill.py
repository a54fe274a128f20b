#!/usr/bin/env python3
"""The chart's pods, run from the image with podman 4.3 `kube play` (run by tests/pods/run.sh).

This script plays the parts of the API server, the ReplicaSet controller, the Deployment
controller and the kubelet: it creates the pods of the rendered Deployment (with the
ConfigMap and the Secret), runs the Deployment's startup, liveness and readiness probes
against them with the kubelet's rules, and performs one `kubectl rollout restart` after
another (at least two, until the last cron is due) with the chart's strategy (maxSurge 1, maxUnavailable 0: one new pod up and ready, then one old pod
sent SIGTERM with the pod's terminationGracePeriodSeconds, repeated) while crons fall due.

What podman cannot take as Kubernetes would, a copy of the rendered manifests is adapted for
(each adaptation is printed at start):
  - host network and loopback only: `hostNetwork: true`, no `ports` (podman refuses them on
    the host network), each pod's ConfigMap copy listens on its own 127.0.0.1 port (the
    chart's 0.0.0.0:<http.port> would be one port for every pod), probes on that port number;
  - the Secret becomes a podman secret in podman's own format (a JSON object of the Secret's
    base64 `data`), which is what secretKeyRef reads in podman 4.3; the Secret object is not
    played;
  - probes are run by this script from the host (podman 4.3 runs only liveness probes, as a
    curl inside the image, which has no curl and no shell);
  - per-pod names for the ConfigMap and the emptyDir (podman makes named volumes of them,
    shared by every pod that uses the name);
  - the pod-template-hash label and the restartedAt annotation that the controllers add;
  - the checksum/config and checksum/secret annotations are left out (podman 4.3 rejects
    annotation values longer than 63 characters; Kubernetes does not).
Checks: every pod runs as uid/gid 65532 with no capabilities, no_new_privs and a seccomp
filter on a read-only root file system; it reads the ConfigMap's file (the same bytes) and
the Secret's passwords (it logs in to PostgreSQL and Redis with them: no password is in the
ConfigMap); every probe passes; every old pod exits 0 within its grace period; every cron
dispatched exactly once (one build per cron, one queue job per build). Prints the longest
time without a leader."""

import argparse
import base64
import calendar
import copy
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import k8s_rendered as k8s  # noqa: E402

import yaml  # noqa: E402

T0 = time.monotonic()


def say(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)
    say(f"ok    {msg}")


def podman(*args, timeout=120, check_rc=True):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise Failed(f"podman {' '.join(args[:3])}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


def http_status(port, path, timeout):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return 0


class Prober(threading.Thread):
    """The kubelet's probes of one container: startup first (liveness and readiness wait for
    it), then liveness and readiness, each on its own period; HTTP 200-399 within
    timeoutSeconds is a success; successThreshold/failureThreshold consecutive results flip
    the state. A liveness failure (the kubelet would restart the container) is recorded."""

    def __init__(self, pod, port, container):
        super().__init__(daemon=True)
        self.pod, self.port = pod, port
        self.probes = {k: container.get(f"{k}Probe") for k in ("startup", "liveness", "readiness")}
        self.started = self.probes["startup"] is None
        self.ready = False
        self.counts = {k: [0, 0] for k in self.probes}  # [successes, failures]
        self.liveness_failed = None
        self.readiness_lost = None
        self.stopping = False
        self.done = threading.Event()

    def one(self, kind):
        p = self.probes[kind]
        status = http_status(self.port, p["httpGet"]["path"], p.get("timeoutSeconds", 1))
        ok = 200 <= status < 400
        self.counts[kind][0 if ok else 1] += 1
        return ok

    def loop(self, kind):
        p = self.probes[kind]
        time.sleep(p.get("initialDelaySeconds", 0))
        ok_run = fail_run = 0
        while not self.done.is_set():
            if kind != "startup" and not self.started:
                time.sleep(0.1)
                continue
            ok = self.one(kind)
            ok_run, fail_run = (ok_run + 1, 0) if ok else (0, fail_run + 1)
            if kind == "startup":
                if ok_run >= p.get("successThreshold", 1):
                    self.started = True
                    return
                if fail_run >= p.get("failureThreshold", 3):
                    self.liveness_failed = f"startup probe failed {fail_run} times"
                    return
            elif kind == "liveness":
                if fail_run >= p.get("failureThreshold", 3) and not self.stopping:
                    self.liveness_failed = f"liveness probe failed {fail_run} times in a row"
            else:
                was = self.ready
                if ok_run >= p.get("successThreshold", 1):
                    self.ready = True
                elif fail_run >= p.get("failureThreshold", 3):
                    self.ready = False
                if was and not self.ready and not self.stopping:
                    self.readiness_lost = f"readiness lost before the pod was stopped"
            self.done.wait(p.get("periodSeconds", 10))

    def run(self):
        threads = [threading.Thread(target=self.loop, args=(k,), daemon=True)
                   for k, p in self.probes.items() if p]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


class Pod:
    def __init__(self, name, port, manifest_path, config_text):
        self.name, self.port, self.manifest_path, self.config_text = name, port, manifest_path, config_text
        self.container = f"{name}-scheduler"
        self.prober = None
        self.stop_thread = None
        self.exit_code = None
        self.stop_seconds = None
        self.created = None

    def leader(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1) as r:
                m = re.search(r"(?m)^djinn_scheduler_leader (\S+)$", r.read().decode())
                return m is not None and float(m.group(1)) == 1.0
        except (OSError, urllib.error.URLError):
            return False


class Drill:
    def __init__(self, args, sql):
        self.args = args
        self.sql = sql
        self.objects = k8s.load_objects(args.rendered)
        self.dep = k8s.one(self.objects, "Deployment")
        self.cm = k8s.one(self.objects, "ConfigMap")
        self.secret = k8s.one(self.objects, "Secret")
        self.template = self.dep["spec"]["template"]
        self.grace = self.template["spec"].get("terminationGracePeriodSeconds", 30)
        self.replicas = self.dep["spec"]["replicas"]
        ru = self.dep["spec"]["strategy"]["rollingUpdate"]
        self.surge, self.unavailable = ru["maxSurge"], ru["maxUnavailable"]
        self.ports = [int(p) for p in args.ports.split(",")]
        self.pods = []  # every pod ever made, in order
        self.secret_name = f"{self.secret['metadata']['name']}"
        self.leader_samples = []  # (t, leaders)
        self.sampling = threading.Event()
        self.lock = threading.Lock()

    # --- adaptation of the rendered objects -----------------------------------------------
    def play_manifest(self, name, port, template, template_hash):
        pod_spec = copy.deepcopy(template["spec"])
        meta = copy.deepcopy(template["metadata"])
        meta["labels"]["pod-template-hash"] = template_hash
        cm_name = f"{self.cm['metadata']['name']}-{name}"
        config_text = k8s.with_http_addr(self.cm["data"]["scheduler.yaml"], f"127.0.0.1:{port}")
        pod_spec["hostNetwork"] = True
        c = pod_spec["containers"][0]
        c.pop("ports", None)
        for kind in ("startup", "liveness", "readiness"):
            c.pop(f"{kind}Probe", None)
        for v in pod_spec["volumes"]:
            if "configMap" in v:
                v["configMap"]["name"] = cm_name
            if "emptyDir" in v:
                old = v["name"]
                v["name"] = f"{old}-{name}"
                for m in c["volumeMounts"]:
                    if m["name"] == old:
                        m["name"] = v["name"]
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name},
              "data": {"scheduler.yaml": config_text}}
        # podman 4.3 refuses annotation values over 63 characters (a label's limit, not an
        # annotation's): the checksum/config and checksum/secret sha256s stay out of the copy.
        annotations = {k: v for k, v in meta.get("annotations", {}).items() if len(str(v)) <= 63}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": self.dep["metadata"]["namespace"],
                            "labels": meta["labels"], "annotations": annotations},
               "spec": pod_spec}
        path = os.path.join(self.args.workdir, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump_all([cm, pod], f, sort_keys=False)
        return path, config_text

    def probe_spec(self, port):
        """The Deployment's probes, with the named port resolved to this pod's port."""
        c = copy.deepcopy(self.template["spec"]["containers"][0])
        for kind in ("startup", "liveness", "readiness"):
            p = c.get(f"{kind}Probe")
            if p:
                p["httpGet"]["port"] = port
        return c

    def check_probes_declared(self):
        c = self.template["spec"]["containers"][0]
        names = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for kind in ("startup", "liveness", "readiness"):
            p = c.get(f"{kind}Probe")
            check(p is not None and p["httpGet"]["port"] in names,
                  f"the Deployment's {kind} probe: GET {p['httpGet']['path']} on the container port "
                  f"{p['httpGet']['port']!r}, every {p['periodSeconds']}s, {p['failureThreshold']} failures")

    # --- pods ---------------------------------------------------------------------------------
    def create_pod(self, template, template_hash):
        name = k8s.pod_name(self.dep["metadata"]["name"], template_hash)
        port = self.ports[len(self.pods)]
        path, config_text = self.play_manifest(name, port, template, template_hash)
        pod = Pod(name, port, path, config_text)
        pod.created = time.monotonic()
        podman("kube", "play", path, timeout=180)
        pod.prober = Prober(name, port, self.probe_spec(port))
        pod.prober.start()
        with self.lock:
            self.pods.append(pod)
        say(f"      pod {name} created (127.0.0.1:{port})")
        return pod

    def wait_ready(self, pod, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pod.prober.liveness_failed:
                raise Failed(f"{pod.name}: {pod.prober.liveness_failed}")
            if pod.prober.ready:
                say(f"      pod {pod.name} ready {time.monotonic() - pod.created:.1f}s after creation")
                return
            time.sleep(0.1)
        raise Failed(f"{pod.name} not ready within {timeout}s: {podman('logs', '--tail', '20', pod.container, check_rc=False)}")

    def terminate(self, pod):
        """What the kubelet does to a deleted pod: SIGTERM, SIGKILL after the grace period."""
        pod.prober.stopping = True

        def stop():
            t = time.monotonic()
            podman("pod", "stop", "-t", str(self.grace), pod.name, timeout=self.grace + 60)
            pod.stop_seconds = time.monotonic() - t
            state = json.loads(podman("inspect", pod.container))[0]["State"]
            pod.exit_code = state["ExitCode"]
            pod.prober.done.set()
        pod.stop_thread = threading.Thread(target=stop, daemon=True)
        pod.stop_thread.start()
        say(f"      pod {pod.name} sent SIGTERM (grace {self.grace}s){' [leader]' if pod.leader() else ''}")

    def security_checks(self, pod):
        info = json.loads(podman("inspect", pod.container))[0]
        pid = info["State"]["Pid"]
        status = open(f"/proc/{pid}/status", encoding="utf-8").read()
        field = lambda k: re.search(rf"(?m)^{k}:\s*(.*)$", status).group(1).split()  # noqa: E731
        check(field("Uid")[:2] == ["65532", "65532"] and field("Gid")[:2] == ["65532", "65532"],
              f"{pod.name}: runs as uid/gid 65532 (non-root)")
        check(field("CapEff") == ["0000000000000000"] and field("CapBnd") == ["0000000000000000"]
              and field("NoNewPrivs") == ["1"] and field("Seccomp") == ["2"],
              f"{pod.name}: no capabilities, no_new_privs, seccomp filter")
        root = next(l for l in open(f"/proc/{pid}/mountinfo", encoding="utf-8") if l.split()[4] == "/")
        check("ro" in root.split()[5].split(","), f"{pod.name}: read-only root file system")
        cmdline = open(f"/proc/{pid}/cmdline", encoding="utf-8").read().split("\0")
        config_path = cmdline[cmdline.index("-config") + 1]
        with open(f"/proc/{pid}/root{config_path}", encoding="utf-8") as f:
            read = f.read()
        check(read == pod.config_text, f"{pod.name}: reads the ConfigMap's file {config_path} (same bytes)")
        env = dict(e.split("=", 1) for e in open(f"/proc/{pid}/environ", encoding="utf-8").read().split("\0") if "=" in e)
        data = {k: base64.b64decode(v).decode() for k, v in self.secret["data"].items()}
        keys = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
                for e in self.template["spec"]["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})}
        check(all(env.get(var) == data[key] for var, key in keys.items()),
              f"{pod.name}: {', '.join(sorted(keys))} come from the Secret's {', '.join(sorted(keys.values()))}")
        check(not any(v in pod.config_text for v in data.values()), f"{pod.name}: no Secret value is in its ConfigMap")

    # --- leadership ---------------------------------------------------------------------------
    def sample_leaders(self):
        while not self.sampling.is_set():
            with self.lock:
                live = [p for p in self.pods if p.exit_code is None]
            leaders = [p.name for p in live if p.leader()]
            self.leader_samples.append((time.monotonic(), leaders))
            time.sleep(0.05)

    def leaderless_gaps(self):
        gaps, start, seen = [], None, False
        for t, leaders in self.leader_samples:
            if leaders:
                if start is not None and seen:
                    gaps.append(t - start)
                start, seen = None, True
            elif start is None:
                start = t
        return gaps

    # --- the drill ----------------------------------------------------------------------------
    def rollout(self, number):
        """kubectl rollout restart: a new pod template (restartedAt), so a new ReplicaSet;
        with maxSurge 1 and maxUnavailable 0: a new pod, ready, then one old pod deleted."""
        template = copy.deepcopy(self.template)
        template["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/restartedAt"] = \
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        template_hash = k8s.k8s_random(10)
        old = [p for p in self.current]
        new = []
        say(f"--- rollout restart {number}: {len(old)} old pods, new ReplicaSet {self.dep['metadata']['name']}-{template_hash}")
        while old:
            # maxUnavailable 0: only surge; the next new pod once the previous one is ready.
            pod = self.create_pod(template, template_hash)
            self.wait_ready(pod)
            new.append(pod)
            # The ReplicaSet controller deletes the old pod that was ready most recently first.
            victim = old.pop()
            self.terminate(victim)
        self.current = new

    def run(self):
        say(f"adapted for podman: hostNetwork, no container ports, per-pod 127.0.0.1 ports in a ConfigMap copy, "
            f"probes run from the host, the Secret as a podman secret ({self.secret_name}), per-pod ConfigMap/emptyDir names, "
            f"no checksum/* annotations (podman's 63-character limit)")
        say(f"Deployment {self.dep['metadata']['name']}: {self.replicas} replicas, maxSurge {self.surge}, "
            f"maxUnavailable {self.unavailable}, grace {self.grace}s, image {self.template['spec']['containers'][0]['image']}")
        check(self.surge == 1 and self.unavailable == 0, "the chart's strategy is maxSurge 1, maxUnavailable 0")
        self.check_probes_declared()
        # podman 4.3's secretKeyRef reads a podman secret holding the JSON of a Secret's data.
        secret_file = os.path.join(self.args.workdir, "secret.json")
        with open(secret_file, "w", encoding="utf-8") as f:
            json.dump(self.secret["data"], f)
        podman("secret", "rm", self.secret_name, check_rc=False)
        podman("secret", "create", self.secret_name, secret_file)
        self.secret_made = True
        os.remove(secret_file)
        sampler = threading.Thread(target=self.sample_leaders, daemon=True)
        template_hash = k8s.k8s_random(10)
        self.current = []
        say("--- initial ReplicaSet")
        for _ in range(self.replicas):
            self.current.append(self.create_pod(self.template, template_hash))
        for pod in self.current:
            self.wait_ready(pod)
        for pod in self.current:
            self.security_checks(pod)
        sampler.start()
        deadline = time.monotonic() + 30
        while not any(p.leader() for p in self.current):
            if time.monotonic() > deadline:
                raise Failed("no leader 30s after the pods were ready")
            time.sleep(0.1)
        check(sum(p.leader() for p in self.current) == 1, "one of the pods leads")
        # Crons fall due every 0.5 s from now on, through the rollouts: restart after restart
        # until the last one is due (at least two restarts).
        n = self.args.crons
        self.sql(f"INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run) "
                 f"SELECT 1, 1, 'drill ' || k, 'daily', "
                 f"E'driver:\\n  type: docker\\n  image: debian:bookworm\\nstages: [test]\\njobs:\\n"
                 f"- stage: test\\n  commands: [true]\\n', "
                 f"(now() AT TIME ZONE 'UTC') + (2 + k * 0.5) * interval '1 second' "
                 f"FROM generate_series(0, {n - 1}) AS k")
        last_due = time.monotonic() + 2 + (n - 1) * 0.5
        say(f"      {n} crons fall due 0.5 s apart over the next {2 + (n - 1) * 0.5:.0f} s")
        self.rollouts = 0
        while self.rollouts < 2 or (time.monotonic() < last_due and self.rollouts < 10):
            self.rollouts += 1
            self.rollout(self.rollouts)
        self.last_due = last_due
        for pod in self.pods:
            if pod.stop_thread:
                pod.stop_thread.join(self.grace + 90)
        for pod in self.current:
            self.security_checks(pod)
        time.sleep(1)
        self.sampling.set()
        sampler.join()
        for pod in self.pods:
            if pod.stop_thread:
                check(pod.exit_code == 0 and pod.stop_seconds < self.grace,
                      f"{pod.name}: exited {pod.exit_code} {pod.stop_seconds:.1f}s after SIGTERM (grace {self.grace}s)")
        for pod in self.pods:
            pr = pod.prober
            check(not pr.liveness_failed and not pr.readiness_lost,
                  f"{pod.name}: probes passed (startup {pr.counts['startup'][0]} ok/{pr.counts['startup'][1]} failed, "
                  f"liveness {pr.counts['liveness'][0]}/{pr.counts['liveness'][1]}, "
                  f"readiness {pr.counts['readiness'][0]}/{pr.counts['readiness'][1]})"
                  f"{' ' + (pr.liveness_failed or pr.readiness_lost) if (pr.liveness_failed or pr.readiness_lost) else ''}")
        leaders_now = [p.name for p in self.current if p.leader()]
        check(len(leaders_now) == 1, f"after the rollouts one new pod leads: {leaders_now}")
        gaps = self.leaderless_gaps()
        say(f"leaderless gaps (polling every 50 ms): {len(gaps)}: {', '.join(f'{g:.2f}s' for g in gaps) or 'none'}")
        self.gaps = gaps
        return self.current

    def cleanup(self):
        self.sampling.set()
        if getattr(self, "secret_made", False):
            podman("secret", "rm", self.secret_name, check_rc=False)
        for pod in self.pods:
            if pod.prober:
                pod.prober.done.set()
            podman("pod", "rm", "-f", "-t", "0", pod.name, check_rc=False, timeout=60)
            podman("volume", "rm", "-f", f"{self.cm['metadata']['name']}-{pod.name}", check_rc=False, timeout=60)

    def logs(self):
        for pod in self.pods:
            out = podman("logs", pod.container, check_rc=False)
            with open(os.path.join(self.args.workdir, f"{pod.name}.log"), "w", encoding="utf-8") as f:
                f.write(out)
            yield pod, out


def log_gaps(logs):
    """Leaderless gaps from the pods' JSON logs: a leader's release (or stop) to the next
    acquisition."""
    events = []
    for pod, text in logs:
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            msg = entry.get("msg", "")
            if msg.startswith("leadership acquired"):
                events.append((entry["time"], "acquired", pod.name))
            elif msg.startswith("leadership released") or msg.startswith("leadership lost"):
                events.append((entry["time"], "released", pod.name))
    events.sort()
    gaps, released = [], None
    for t, what, name in events:
        if what == "released":
            released = (t, name)
        elif released:
            gaps.append((released[1], name, seconds_between(released[0], t)))
            released = None
    return events, gaps


def seconds_between(a, b):
    """b - a for the logs' UTC times 2026-12-01T08:34:12.123Z."""
    def parse(s):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d):(\d\d(?:\.\d+)?)Z", s)
        return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M")) + float(m.group(2))
    return parse(b) - parse(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rendered", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--psql", required=True, help="psql command line, space separated, for the database")
    ap.add_argument("--redis-cli", required=True, help="redis-cli command line, space separated")
    ap.add_argument("--crons", type=int, required=True)
    args = ap.parse_args()
    psql = args.psql.split()
    redis = args.redis_cli.split()

    def sql(q):
        return subprocess.run(psql + ["-At", "-c", q], capture_output=True, text=True, check=True).stdout.strip()

    def rcli(*a):
        return subprocess.run(redis + list(a), capture_output=True, text=True, check=True).stdout.strip()

    drill = Drill(args, sql)

    rc = 0
    try:
        drill.run()
        # Every cron that fell due during the drill, dispatched once.
        time.sleep(max(0.0, drill.last_due - time.monotonic()))
        deadline = time.monotonic() + 60
        while sql("SELECT count(*) FROM cron WHERE next_run <= now() AT TIME ZONE 'UTC'") != "0":
            if time.monotonic() > deadline:
                raise Failed("crons still due 60 s after the drill")
            time.sleep(0.5)
        per_cron = sql("SELECT string_agg(n::text, ',') FROM (SELECT count(cb.build_id) AS n FROM cron c "
                       "LEFT JOIN cron_builds cb ON cb.cron_id = c.id GROUP BY c.id) x")
        counts = [int(x) for x in per_cron.split(",")]
        builds = int(sql("SELECT count(*) FROM builds"))
        queued = int(rcli("LLEN", "builds_docker:active"))
        data = int(rcli("HLEN", "builds_docker:data"))
        ids = sql("SELECT string_agg(id::text, ' ') FROM builds").split()
        markers = sum(int(rcli("EXISTS", f"djinn-scheduler:enqueued:{i}")) for i in ids)
        check(len(counts) == args.crons and all(n == 1 for n in counts),
              f"every one of the {args.crons} crons (falling due 0.5 s apart through {drill.rollouts} "
              f"rollout restarts) got exactly one build {sorted(set(counts)) if any(n != 1 for n in counts) else ''}")
        check(builds == args.crons and queued == builds and data == builds and markers == builds,
              f"{builds} builds, {queued} queue jobs on builds_docker, {markers} enqueue markers: each build enqueued once")
        events, gaps = log_gaps(drill.logs())
        for t, what, name in events:
            say(f"      log: {t} {name} leadership {what}")
        for old, new, g in gaps:
            say(f"      handover {old} -> {new}: {g:.3f}s without a leader (log timestamps)")
        # Each restart replaces every pod there was, the leader with them: at least one handover
        # (a terminating leader can hand over to a pod of the next restart).
        check(len(gaps) >= 1, f"{len(gaps)} leadership handovers in the logs over {drill.rollouts} rollout restarts")
        longest_log = max(g for _, _, g in gaps)
        longest_poll = max(drill.gaps) if drill.gaps else 0.0
        say(f"LONGEST LEADERLESS GAP: {longest_log:.3f}s by the pods' log timestamps, "
            f"{longest_poll:.2f}s by polling /metrics every 50 ms")
    except (Failed, subprocess.CalledProcessError) as e:
        rc = 1
        say(f"FAIL  {e}")
        for pod, text in drill.logs():
            say(f"--- {pod.name} (last lines)")
            print("\n".join(text.splitlines()[-12:]))
    finally:
        drill.cleanup()
    if rc == 0:
        say("pod drill: all checks passed")
    return rc


if __name__ == "__main__":
    sys.exit(main())
