#!/usr/bin/env python3
"""The chart's monitoring, evaluated by a real Prometheus (run by tests/prometheus/run.sh).

Starts REPLICAS djinn-scheduler processes with the config of the chart's ConfigMap, and two
Prometheus 2.42 servers that scrape them the way the prometheus-operator would for the chart's
ServiceMonitor (one server) and PodMonitor (the other): the operator's relabelling, applied to
the meta labels that Kubernetes service discovery would attach to these pods (derived from the
rendered Deployment and Service; file_sd stands in for the API server). Both load the chart's
rendered PrometheusRule; the ServiceMonitor one also loads deploy/components/monitoring's.

Checks, through Prometheus's HTTP API:
  - every target is up, every metric of a live /metrics exists as a series with the namespace,
    pod, container, job and endpoint labels, and the alerts' selectors match every replica;
  - every label value an alert selects (errors_total{kind=~...}) is one the scheduler exports;
  - every rule is healthy and evaluated;
  - no alert is pending or firing while a leader runs, and none fires across a failover;
  - every query of the Grafana dashboard (and its variables) returns series;
  - promtool check metrics accepts a live /metrics;
  - DjinnSchedulerNoLeader fires when every replica is stopped, and resolves when one is back.
Prints what it measured; exits 1 on the first failed check.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
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


def http_get(url, timeout=3.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_until(pred, timeout, what, every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(every)
    raise Failed(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


class Prometheus:
    def __init__(self, name, port, workdir, config, rule_files):
        self.name = name
        self.port = port
        self.dir = os.path.join(workdir, f"prometheus-{name}")
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "prometheus.yml")
        with open(self.config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        self.rule_files = rule_files
        self.proc = None
        self.log_path = os.path.join(self.dir, "prometheus.log")

    def start(self):
        log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.config_path}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: http_get(self.url("/-/ready"))[0] == 200, 30, f"Prometheus {self.name} ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def url(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params, doseq=True)) if params else ""
        return f"http://127.0.0.1:{self.port}{path}{q}"

    def api(self, path, **params):
        status, body = http_get(self.url(path, **params), timeout=10)
        data = json.loads(body)
        if data.get("status") != "success":
            raise Failed(f"Prometheus {self.name} {path} {params}: {data}")
        return data["data"]

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)

    def vector(self, expr):
        data = self.query(expr)
        if data["resultType"] != "vector":
            raise Failed(f"{expr}: expected a vector, got {data['resultType']}")
        return data["result"]

    def scalar_value(self, expr):
        v = self.vector(expr)
        return float(v[0]["value"][1]) if v else None

    def alerts(self):
        return self.api("/api/v1/alerts")["alerts"]

    def rules(self):
        return [r for g in self.api("/api/v1/rules")["groups"] for r in g["rules"]]


class Replica:
    def __init__(self, index, binary, config_text, port, pod, workdir, env):
        self.index = index
        self.port = port
        self.pod = pod
        self.binary = binary
        self.dir = os.path.join(workdir, f"replica-{index}")
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "scheduler.yaml")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(k8s.with_http_addr(config_text, f"127.0.0.1:{port}"))
        self.log_path = os.path.join(self.dir, "scheduler.log")
        self.env = env
        self.proc = None

    def start(self):
        log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen([self.binary, "-config", self.config_path], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=30):
        """SIGTERM and wait, as the kubelet does within the grace period."""
        if not self.running():
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failed(f"replica {self.pod} did not stop within {timeout}s of SIGTERM")

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()

    def metrics(self):
        return http_get(f"http://127.0.0.1:{self.port}/metrics")[1]

    def ready(self):
        try:
            return http_get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200
        except urllib.error.HTTPError:
            return False

    def leader(self):
        m = re.search(r"(?m)^djinn_scheduler_leader (\S+)$", self.metrics())
        return m is not None and float(m.group(1)) == 1.0


# --- what the prometheus-operator generates ------------------------------------------------
# These follow the scrape configs prometheus-operator (v0.6x) writes for a ServiceMonitor
# endpoint (role: endpoints) and a PodMonitor endpoint (role: pod), minus the sharding
# hashmod and the options the chart does not set. file_sd carries the meta labels that
# kubernetes_sd would attach.

def keep_by_labels(prefix, match_labels):
    rules = []
    for key, value in sorted(match_labels.items()):
        s = k8s.sanitize_label(key)
        rules.append({"action": "keep",
                      "source_labels": [f"__meta_kubernetes_{prefix}_label_{s}",
                                        f"__meta_kubernetes_{prefix}_labelpresent_{s}"],
                      "regex": f"({re.escape(value)});true"})
    return rules


def service_monitor_job(sm):
    ep = sm["spec"]["endpoints"][0]
    ns, name = sm["metadata"]["namespace"], sm["metadata"]["name"]
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    relabel += keep_by_labels("service", sm["spec"]["selector"]["matchLabels"])
    relabel += [
        {"action": "keep", "source_labels": ["__meta_kubernetes_endpoint_port_name"], "regex": ep["port"]},
        {"source_labels": ["__meta_kubernetes_endpoint_address_target_kind",
                           "__meta_kubernetes_endpoint_address_target_name"],
         "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
        {"source_labels": ["__meta_kubernetes_endpoint_address_target_kind",
                           "__meta_kubernetes_endpoint_address_target_name"],
         "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"},
        {"target_label": "endpoint", "replacement": ep["port"]},
    ]
    return {"job_name": f"serviceMonitor/{ns}/{name}/0",
            "honor_labels": False,
            "scrape_interval": ep["interval"], "scrape_timeout": ep["scrapeTimeout"],
            "metrics_path": ep["path"], "scheme": ep["scheme"],
            "relabel_configs": relabel}


def pod_monitor_job(pm):
    ep = pm["spec"]["podMetricsEndpoints"][0]
    ns, name = pm["metadata"]["namespace"], pm["metadata"]["name"]
    relabel = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
    relabel += keep_by_labels("pod", pm["spec"]["selector"]["matchLabels"])
    relabel += [
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": ep["port"]},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"target_label": "job", "replacement": f"{ns}/{name}"},
        {"target_label": "endpoint", "replacement": ep["port"]},
    ]
    return {"job_name": f"podMonitor/{ns}/{name}/0",
            "honor_labels": False,
            "scrape_interval": ep["interval"], "scrape_timeout": ep["scrapeTimeout"],
            "metrics_path": ep["path"], "scheme": ep["scheme"],
            "relabel_configs": relabel}


def labels_meta(prefix, labels):
    out = {}
    for k, v in (labels or {}).items():
        s = k8s.sanitize_label(k)
        out[f"__meta_kubernetes_{prefix}_label_{s}"] = v
        out[f"__meta_kubernetes_{prefix}_labelpresent_{s}"] = "true"
    return out


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_meta(namespace, pod, pod_labels, container, port):
    meta = {"__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_ready": "true",
            "__meta_kubernetes_pod_container_name": container["name"],
            "__meta_kubernetes_pod_container_port_name": port["name"],
            "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
            "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP")}
    meta.update(labels_meta("pod", pod_labels))
    return meta


def endpoints_targets(objects, replicas):
    """What role: endpoints discovers for the chart's Service: the pods it selects, on the
    container port its targetPort names."""
    dep, svc = k8s.one(objects, "Deployment"), k8s.one(objects, "Service")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    check(selects(svc["spec"]["selector"], pod_labels),
          f"the Service's selector {svc['spec']['selector']} selects the Deployment's pods")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    groups = []
    for sp in svc["spec"]["ports"]:
        cport = next(p for p in container["ports"] if p["name"] == sp["targetPort"] or p["containerPort"] == sp["targetPort"])
        for r in replicas:
            labels = pod_meta(dep["metadata"]["namespace"], r.pod, pod_labels, container, cport)
            labels.update(labels_meta("service", svc["metadata"]["labels"]))
            labels.update({"__meta_kubernetes_service_name": svc["metadata"]["name"],
                           "__meta_kubernetes_endpoint_port_name": sp["name"],
                           "__meta_kubernetes_endpoint_port_protocol": sp.get("protocol", "TCP"),
                           "__meta_kubernetes_endpoint_ready": "true",
                           "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                           "__meta_kubernetes_endpoint_address_target_name": r.pod})
            groups.append({"targets": [f"127.0.0.1:{r.port}"], "labels": labels})
    return groups


def pod_targets(objects, replicas):
    dep = k8s.one(objects, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return [{"targets": [f"127.0.0.1:{r.port}"],
             "labels": pod_meta(dep["metadata"]["namespace"], r.pod, pod_labels, container, p)}
            for p in container["ports"] for r in replicas]


def namespace_selected(monitor, namespace):
    names = monitor["spec"].get("namespaceSelector", {}).get("matchNames")
    return names is None or namespace in names


def prometheus_config(job, sd_file, rule_files):
    job = dict(job)
    job["file_sd_configs"] = [{"files": [sd_file], "refresh_interval": "1s"}]
    return {"global": {"scrape_interval": job["scrape_interval"], "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "scrape_configs": [job]}


# --- checks --------------------------------------------------------------------------------

def exposition_names(text):
    """Sample names of a Prometheus text exposition."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def selector_of(expr, metric):
    m = re.search(re.escape(metric) + r"\{([^}]*)\}", expr)
    return m.group(1) if m else None


def selected_label_values(rules):
    """(metric, label, value) for every simple matcher label=\"v\" / label=~\"a|b\" in the
    rules' expressions, except the release selectors (namespace, pod, job)."""
    out = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            for metric, inside in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", rule["expr"]):
                for label, op, value in re.findall(r'(\w+)\s*(=~|=)\s*"([^"]*)"', inside):
                    if label in ("namespace", "pod", "job"):
                        continue
                    values = value.split("|") if op == "=~" else [value]
                    for v in values:
                        if re.fullmatch(r"[A-Za-z0-9_]+", v):
                            out.add((metric, label, v))
    return sorted(out)


def check_rules_healthy(prom, rules_file, expected_alerts):
    """The rules of one file are all loaded, healthy and evaluated."""
    groups = [g for g in prom.api("/api/v1/rules")["groups"] if g["file"] == rules_file]
    rules = [r for g in groups for r in g["rules"]]
    what = f"{prom.name}: {os.path.basename(rules_file)}"
    names = sorted(r.get("name") for r in rules)
    check(names == sorted(expected_alerts), f"{what}: its {len(expected_alerts)} alerts are loaded")
    bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules
           if r.get("health") != "ok" or r.get("lastError")]
    check(not bad, f"{what}: every rule healthy (health ok, no lastError) {bad or ''}")
    unevaluated = [r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001-")]
    check(not unevaluated, f"{what}: every rule evaluated {unevaluated or ''}")


def no_alerts_for(proms, seconds, allow_pending=False):
    """No alert firing (nor pending unless allowed) on any server for `seconds`."""
    deadline = time.monotonic() + seconds
    pendings = set()
    samples = 0
    while time.monotonic() < deadline:
        for p in proms:
            for a in p.alerts():
                name = a["labels"]["alertname"]
                if a["state"] == "firing" or not allow_pending:
                    raise Failed(f"{p.name}: alert {name} is {a['state']} ({a['labels']})")
                pendings.add(name)
        samples += 1
        time.sleep(0.5)
    return samples, pendings


def dashboard_queries(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    exprs = [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    variables = [(v["name"], v["definition"]) for v in d.get("templating", {}).get("list", [])
                 if v.get("type") == "query"]
    return exprs, variables


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--servicemonitor-rendering", required=True)
    ap.add_argument("--podmonitor-rendering", required=True)
    ap.add_argument("--kustomize-rules", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--ports", required=True, help="comma-separated free loopback ports")
    args = ap.parse_args()

    ports = [int(p) for p in args.ports.split(",")]
    sm_objects = k8s.load_objects(args.servicemonitor_rendering)
    pm_objects = k8s.load_objects(args.podmonitor_rendering)
    dep = k8s.one(sm_objects, "Deployment")
    namespace = dep["metadata"]["namespace"]
    config_text = k8s.scheduler_config(sm_objects)
    chart_rules = k8s.prometheus_rules(sm_objects)
    chart_alerts = [r["alert"] for g in chart_rules["groups"] for r in g["rules"] if "alert" in r]
    with open(args.kustomize_rules, encoding="utf-8") as f:
        kustomize_rules = yaml.safe_load(f)["spec"]
    kustomize_alerts = [r["alert"] for g in kustomize_rules["groups"] for r in g["rules"] if "alert" in r]
    no_leader = next(r for g in chart_rules["groups"] for r in g["rules"] if r.get("alert") == "DjinnSchedulerNoLeader")
    say(f"chart alerts: {', '.join(chart_alerts)}; DjinnSchedulerNoLeader for: {no_leader['for']}")

    rules_dir = os.path.join(args.workdir, "rules")
    os.makedirs(rules_dir, exist_ok=True)
    chart_rules_file = os.path.join(rules_dir, "chart.rules.yaml")
    kustomize_rules_file = os.path.join(rules_dir, "kustomize.rules.yaml")
    for path, rules in ((chart_rules_file, chart_rules), (kustomize_rules_file, kustomize_rules)):
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(rules, f, sort_keys=False)
        out = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        check(out.returncode == 0, f"promtool check rules {os.path.basename(path)}: {out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr}")

    template_hash = k8s.k8s_random(10)
    env = dict(os.environ)
    replicas = [Replica(i, args.bin, config_text, ports[i], k8s.pod_name(dep["metadata"]["name"], template_hash),
                        args.workdir, env) for i in range(args.replicas)]
    sm = k8s.one(sm_objects, "ServiceMonitor")
    pm = k8s.one(pm_objects, "PodMonitor")
    check(namespace_selected(sm, namespace) and namespace_selected(pm, namespace),
          f"the ServiceMonitor and the PodMonitor select the release namespace {namespace}")

    sd_sm = os.path.join(args.workdir, "sd-endpoints.json")
    sd_pm = os.path.join(args.workdir, "sd-pods.json")
    k8s.dump_json(sd_sm, endpoints_targets(sm_objects, replicas))
    k8s.dump_json(sd_pm, pod_targets(pm_objects, replicas))
    prom_sm = Prometheus("servicemonitor", ports[-2], args.workdir,
                         prometheus_config(service_monitor_job(sm), sd_sm, [chart_rules_file, kustomize_rules_file]),
                         [chart_rules_file, kustomize_rules_file])
    prom_pm = Prometheus("podmonitor", ports[-1], args.workdir,
                         prometheus_config(pod_monitor_job(pm), sd_pm, [chart_rules_file]), [chart_rules_file])
    proms = [prom_sm, prom_pm]
    for p in proms:
        out = subprocess.run(["promtool", "check", "config", p.config_path], capture_output=True, text=True)
        check(out.returncode == 0, f"promtool check config ({p.name}): the generated scrape config is valid")

    failures = 0
    try:
        for r in replicas:
            r.start()
        for r in replicas:
            wait_until(r.ready, 60, f"replica {r.pod} /readyz 200")
        leaders = wait_until(lambda: [r for r in replicas if r.leader()] or None, 30, "a leader")
        check(len(leaders) == 1, f"{len(replicas)} replicas ready, one leader: {leaders[0].pod}")
        for p in proms:
            p.start()
        say(f"Prometheus servicemonitor on 127.0.0.1:{prom_sm.port}, podmonitor on 127.0.0.1:{prom_pm.port}")

        # Targets and series.
        for p in proms:
            wait_until(lambda p=p: p.scalar_value("sum(up)") == len(replicas), 30, f"{p.name}: {len(replicas)} targets up")
            say(f"ok    {p.name}: {len(replicas)} targets up")
        exposition = replicas[0].metrics()
        names = exposition_names(exposition)
        for p in proms:
            # A few scrapes so that rate() and increase() have two samples.
            wait_until(lambda p=p: p.scalar_value("min(count_over_time(up[1m]))") >= 3, 20, f"{p.name}: 3 scrapes")
            series = p.api("/api/v1/series", **{"match[]": '{__name__=~"djinn_scheduler_.*|process_.*"}'})
            have = {s["__name__"] for s in series}
            missing = sorted(names - have)
            check(not missing, f"{p.name}: all {len(names)} sample names of /metrics are series in Prometheus {missing or ''}")
            unlabelled = [s for s in series if not all(s.get(k) for k in ("namespace", "pod", "container", "job", "endpoint"))]
            check(not unlabelled, f"{p.name}: every series has namespace, pod, container, job, endpoint labels")
            pods = {s["pod"] for s in series}
            check(pods == {r.pod for r in replicas} and {s["namespace"] for s in series} == {namespace},
                  f"{p.name}: pod labels are the {len(replicas)} pod names ({', '.join(sorted(pods))}), namespace {namespace}")
            sel = selector_of(no_leader["expr"], "djinn_scheduler_leader")
            n = p.scalar_value(f"count(djinn_scheduler_leader{{{sel}}})")
            check(n == len(replicas), f"{p.name}: the alerts' selector {{{sel}}} matches all {len(replicas)} replicas")
            check(p.scalar_value(f"sum(djinn_scheduler_leader{{{sel}}})") == 1, f"{p.name}: sum(djinn_scheduler_leader) is 1")
        jobs = {s["job"] for s in prom_sm.api("/api/v1/series", **{"match[]": "djinn_scheduler_leader"})}
        say(f"      servicemonitor job label: {sorted(jobs)}; podmonitor job label: "
            f"{sorted({s['job'] for s in prom_pm.api('/api/v1/series', **{'match[]': 'djinn_scheduler_leader'})})}")
        check(jobs == {"djinn-scheduler"}, "servicemonitor: job is the Service name, as deploy/components/monitoring's rules select (job=\"djinn-scheduler\")")

        for metric, label, value in sorted(set(selected_label_values(chart_rules) + selected_label_values(kustomize_rules))):
            n = prom_sm.scalar_value(f'count({metric}{{{label}="{value}"}})')
            check(n, f"alert selector {metric}{{{label}=\"{value}\"}} names series the scheduler exports")

        for p in proms:
            check_rules_healthy(p, chart_rules_file, chart_alerts)
        check_rules_healthy(prom_sm, kustomize_rules_file, kustomize_alerts)

        # Steady state: longer than DjinnSchedulerNoLeader's `for`, so a pending alert would fire.
        window = 20
        samples, _ = no_alerts_for(proms, window)  # raises on the first pending or firing alert
        say(f"ok    no alert pending or firing on either server for {window}s with a leader ({samples} polls)")

        # The dashboard: every panel query and every variable, as Grafana would send them.
        exprs, variables = dashboard_queries(args.dashboard)
        subst = {"$namespace": namespace, "$job": ".*", "$__rate_interval": "30s"}
        for name, definition in variables:
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition)
            check(m is not None, f"dashboard variable {name}: {definition} is label_values(metric, label)")
            match = m.group(1)
            for k, v in subst.items():
                match = match.replace(k, v)
            for p in proms:
                values = p.api(f"/api/v1/label/{m.group(2)}/values", **{"match[]": match})
                check(values, f"{p.name}: dashboard variable ${name} has values {values}")
        for title, expr in exprs:
            q = expr
            for k, v in subst.items():
                q = q.replace(k, v)
            for p in proms:
                result = p.query(q)["result"]
                check(result, f"{p.name}: dashboard \"{title}\": {len(result)} series for {q[:90]}")
            for metric in sorted(set(re.findall(r"\b((?:djinn_scheduler|process)_[a-z_]+)", expr))):
                check(prom_sm.scalar_value(f'count({{__name__="{metric}"}})'), f"dashboard metric {metric} exists")

        # promtool's linter on what the scheduler serves.
        for r in replicas:
            out = subprocess.run(["promtool", "check", "metrics"], input=r.metrics(), capture_output=True, text=True)
            check(out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(),
                  f"promtool check metrics on {r.pod}'s /metrics: no problem {out.stdout}{out.stderr}")

        # Failover: the leader drains on SIGTERM, a standby takes over; nothing may fire.
        leader = next(r for r in replicas if r.leader())
        t = time.monotonic()
        rc = leader.terminate(30)
        check(rc == 0, f"leader {leader.pod} stopped on SIGTERM (exit {rc}) in {time.monotonic() - t:.1f}s")
        new = wait_until(lambda: [r for r in replicas if r.running() and r.leader()] or None, 30, "a new leader")
        say(f"      new leader {new[0].pod} {time.monotonic() - t:.1f}s after the SIGTERM")
        for p in proms:
            wait_until(lambda p=p: p.scalar_value("sum(up)") == len(replicas) - 1, 15, f"{p.name}: stopped target down")
        samples, pendings = no_alerts_for(proms, window, allow_pending=True)  # raises on firing
        say(f"ok    no alert fired for {window}s across the failover ({samples} polls; pending at some "
            f"poll: {', '.join(sorted(pendings)) or 'none'})")

        # No leader at all: every replica stopped.
        t_stop = time.monotonic()
        for r in replicas:
            r.terminate(30)
        say("      every replica stopped (SIGTERM)")

        def no_leader_firing(p):
            firing = [a for a in p.alerts() if a["state"] == "firing"]
            return firing if any(a["labels"]["alertname"] == "DjinnSchedulerNoLeader" for a in firing) else None

        for p in proms:
            firing = wait_until(lambda p=p: no_leader_firing(p), 90, f"{p.name}: DjinnSchedulerNoLeader firing")
            a = next(a for a in firing if a["labels"]["alertname"] == "DjinnSchedulerNoLeader")
            others = sorted({f["labels"]["alertname"] for f in firing} - {"DjinnSchedulerNoLeader"})
            check(a["labels"].get("severity") == "critical" and not others,
                  f"{p.name}: DjinnSchedulerNoLeader firing {time.monotonic() - t_stop:.1f}s after the last replica "
                  f"stopped (for: {no_leader['for']}), severity critical, no other alert firing {others or ''}")
        say(f"      description: {a['annotations']['description']}")

        # Back: one replica leads again, the alert resolves.
        replicas[0].start()
        wait_until(replicas[0].leader, 60, "the restarted replica leads")
        for p in proms:
            wait_until(lambda p=p: not [a for a in p.alerts() if a["labels"]["alertname"] == "DjinnSchedulerNoLeader"],
                       30, f"{p.name}: DjinnSchedulerNoLeader resolved")
            say(f"ok    {p.name}: DjinnSchedulerNoLeader resolved once {replicas[0].pod} leads again")
        replicas[0].terminate(30)
    except Failed as e:
        failures += 1
        say(f"FAIL  {e}")
    finally:
        for r in replicas:
            r.kill()
        for p in proms:
            p.stop()
    if failures:
        for r in replicas:
            say(f"--- {r.pod} log (last lines)")
            with open(r.log_path, encoding="utf-8", errors="replace") as f:
                print("".join(f.readlines()[-15:]))
        for p in proms:
            say(f"--- Prometheus {p.name} log (last lines)")
            with open(p.log_path, encoding="utf-8", errors="replace") as f:
                print("".join(f.readlines()[-15:]))
        return 1
    say("prometheus test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
