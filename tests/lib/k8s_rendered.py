"""Reading the chart's rendered manifests (helm template output), for the tests that run
what the chart describes: the Prometheus test (tests/prometheus) and the pod drill
(tests/pods). Standard library + PyYAML (python3-yaml) only."""

import json
import random
import re
import string

import yaml


def load_objects(path):
    """Every object of a multi-document YAML file, in order."""
    with open(path, encoding="utf-8") as f:
        return [o for o in yaml.safe_load_all(f) if o]


def one(objects, kind):
    found = [o for o in objects if o.get("kind") == kind]
    if len(found) != 1:
        raise SystemExit(f"expected exactly one {kind} in the rendering, found {len(found)}")
    return found[0]


def maybe(objects, kind):
    found = [o for o in objects if o.get("kind") == kind]
    return found[0] if found else None


def scheduler_config(objects):
    """The scheduler.yaml text of the chart's ConfigMap, as the pod reads it."""
    cm = one(objects, "ConfigMap")
    return cm["data"]["scheduler.yaml"]


def with_http_addr(config_text, addr):
    """The config with its http.addr replaced: on a host network every pod needs its own
    loopback port (the chart binds 0.0.0.0:<http.port>, one port for every pod)."""
    out, n = re.subn(r'(?m)^(http:\n  addr: )"[^"]*"$', lambda m: f'{m.group(1)}"{addr}"', config_text)
    if n != 1:
        raise SystemExit("the rendered config has no `http:\\n  addr: \"...\"` to adapt")
    return out


def prometheus_rules(objects):
    """The rule groups of the rendered PrometheusRule: its spec is a plain rules file."""
    return one(objects, "PrometheusRule")["spec"]


# What Kubernetes makes up when a ReplicaSet creates a pod: a pod-template-hash of 10 and a
# suffix of 5 characters of this alphabet (k8s.io/apimachinery/pkg/util/rand), so the pods
# have the names that the chart's alert selectors (pod=~"<fullname>-[a-z0-9]+-[a-z0-9]+")
# must match.
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def k8s_random(n, rng=random):
    return "".join(rng.choice(_K8S_ALPHABET) for _ in range(n))


def pod_name(deployment_name, template_hash, rng=random):
    return f"{deployment_name}-{template_hash}-{k8s_random(5, rng)}"


def sanitize_label(name):
    """Kubernetes label name -> the Prometheus meta-label suffix kubernetes_sd makes of it."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def dump_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def safe_name(s):
    return "".join(c if c in string.ascii_letters + string.digits + "-_." else "_" for c in s)
