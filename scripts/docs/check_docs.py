#!/usr/bin/env python3
"""Checks the examples of the documentation against the real program and chart
(run by scripts/check-docs.sh, which passes the binary and Helm).

A fenced block's info string is `LANGUAGE [ROLE [NAME]]`; GitHub highlights by the first word
and ignores the rest. Roles:
  scheduler      a scheduler config (```conf scheduler: Djinn's language; ```yaml scheduler:
                 YAML): must pass `djinn-scheduler -check-config` with no warning about an
                 unset ${VAR}, and a leader.key it sets must be the default one
  helm-values    chart values (```yaml helm-values my-values.yaml): `helm template` with them
                 must render, and the ConfigMap it renders must pass -check-config
  not-config     YAML that is neither (shown for another reason)
Also checked:
  - every ```yaml block has a role, and no block without one looks like a scheduler config;
  - `helm install` / `helm upgrade` commands of ```sh blocks render (as `helm template` with
    the same flags; `-f NAME` is the helm-values block of that NAME in the same document);
  - every DJINN_* variable the documents name exists in the code, scripts or chart.
Prints one line per check; exits 1 if any failed."""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

DEFAULT_LEADER_KEY = 0x646A696E6E736368  # config.hpp: LeaderConfig::lock_key
# The values the environment gives the ${VAR}s of a config (the chart's Secret, dist/).
CONFIG_ENV = {"DJINN_DATABASE_PASSWORD": "docs-db-password", "DJINN_CRYPTO_SALT": "docs-salt",
              "DJINN_REDIS_PASSWORD": "docs-redis-password"}
# Where a DJINN_* name must appear to be real (not the documents themselves).
CODE_DIRS = ["src", "scripts", "tests", "charts", "deploy", "dist", "bench", ".ci", ".github"]
CODE_FILES = ["Dockerfile", "CMakeLists.txt"]
# Djinn's own scheduler.conf keys, to recognise a config example that lacks its role.
CONFIG_LINE = re.compile(r"^\s*(pidfile|interval|batch_size|log_format|drivers|crypto|database|"
                         r"redis|leader|drain_timeout)\s*[{\[\"0-9]", re.M)

FENCE = re.compile(r"^( *)```(.*)$")  # indented inside a list item too


class Doc:
    def __init__(self, path, root):
        self.path = path
        self.rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.blocks = []  # (line, lang, role, name, body)
        lines = self.text.split("\n")
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if m:
                indent = len(m.group(1))
                words = m.group(2).split()
                start = i + 1
                j = start
                while j < len(lines) and not lines[j].strip().startswith("```"):
                    j += 1
                body = "\n".join(l[indent:] if l[:indent].strip() == "" else l
                                 for l in lines[start:j]) + "\n"
                lang = words[0] if words else ""
                role = words[1] if len(words) > 1 else ""
                name = words[2] if len(words) > 2 else ""
                self.blocks.append((start, lang, role, name, body))
                i = j + 1
            else:
                i += 1


class Checker:
    def __init__(self, args):
        self.args = args
        self.ok = 0
        self.failed = []
        self.work = tempfile.mkdtemp(prefix="djinn-docs.", dir=os.environ.get("TMPDIR", "/tmp"))
        self.n = 0

    def result(self, good, what, detail=""):
        if good:
            self.ok += 1
            print(f"ok    {what}")
        else:
            self.failed.append(what)
            print(f"FAIL  {what}")
            for line in detail.strip().splitlines()[-20:]:
                print(f"      | {line}")

    def file(self, name, text):
        self.n += 1
        d = os.path.join(self.work, str(self.n))
        os.makedirs(d)
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def check_config(self, path):
        env = dict(os.environ)
        env.update(CONFIG_ENV)
        p = subprocess.run([self.args.bin, "-check-config", "-config", path], capture_output=True,
                           text=True, env=env)
        return p.returncode, p.stdout + p.stderr

    def scheduler_example(self, doc, line, lang, body):
        where = f"{doc.rel}:{line}"
        if lang not in ("conf", "yaml"):
            self.result(False, f"{where}: a scheduler example is ```conf or ```yaml, not ```{lang}")
            return
        path = self.file("scheduler.yaml" if lang == "yaml" else "scheduler.conf", body)
        rc, out = self.check_config(path)
        unset = [l for l in out.splitlines() if "is not set" in l]
        self.result(rc == 0 and not unset,
                    f"{where}: {'YAML' if lang == 'yaml' else 'Djinn-language'} example passes -check-config"
                    f"{' (warnings: ' + str(len(out.splitlines()) - 1) + ')' if out.count('warning:') else ''}",
                    out)
        for key in leader_keys(body):
            self.result(key == DEFAULT_LEADER_KEY,
                        f"{where}: leader.key {key} equals the default {DEFAULT_LEADER_KEY} "
                        "(a replica left at the default would take another lock and lead too)")

    def helm(self, args, what, values_files=()):
        cmd = [self.args.helm, "template"] + args
        for v in values_files:
            cmd += ["-f", v]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            self.result(False, what, p.stderr)
            return None
        return p.stdout

    def rendered_config_ok(self, rendered, where):
        cms = [o for o in yaml.safe_load_all(rendered) if o and o.get("kind") == "ConfigMap"]
        if len(cms) != 1:
            self.result(False, f"{where}: one ConfigMap rendered, found {len(cms)}")
            return
        path = self.file("scheduler.yaml", cms[0]["data"]["scheduler.yaml"])
        rc, out = self.check_config(path)
        self.result(rc == 0 and "is not set" not in out, f"{where}: its ConfigMap passes -check-config", out)

    def helm_values_example(self, doc, line, body):
        where = f"{doc.rel}:{line}"
        path = self.file("values.yaml", body)
        out = self.helm(["djinn-scheduler", self.args.chart, "--namespace", "djinn"],
                        f"{where}: helm template -f <these values> renders", [path])
        if out is not None:
            self.result(True, f"{where}: helm template -f <these values> renders")
            self.rendered_config_ok(out, where)

    def helm_commands(self, doc, line, body, values_by_name):
        text = re.sub(r"\\\n\s*", " ", body)
        for raw in text.splitlines():
            cmd = raw.split("#", 1)[0].strip()
            if not re.match(r"helm (install|upgrade)\b", cmd):
                continue
            where = f"{doc.rel}:{line}: `{cmd[:70]}{'...' if len(cmd) > 70 else ''}`"
            args = shlex.split(re.sub(r"\$\{?(\w+)\}?", r"docs-\1", cmd))[1:]
            verb = args.pop(0)
            out_args, files, missing = [], [], []
            i = 0
            positional = []
            while i < len(args):
                a = args[i]
                if a in ("--install", "--wait", "--atomic", "--create-namespace", "--reuse-values",
                         "--reset-values", "--debug"):
                    i += 1
                    continue
                if a in ("--timeout", "--history-max", "--version"):
                    i += 2
                    continue
                if a in ("-f", "--values"):
                    name = args[i + 1]
                    if name in values_by_name:
                        files.append(values_by_name[name])
                    else:
                        missing.append(name)
                    i += 2
                    continue
                if a in ("-n", "--namespace", "--set", "--set-string", "--set-json", "--set-file"):
                    out_args += [a, args[i + 1]]
                    i += 2
                    continue
                if a.startswith("-"):
                    out_args.append(a)
                    i += 1
                    continue
                positional.append(a)
                i += 1
            if missing:
                self.result(False, f"{where}: -f {', '.join(missing)} is not a helm-values block of {doc.rel}")
                continue
            if len(positional) != 2:
                self.result(False, f"{where}: expected `helm {verb} NAME CHART`")
                continue
            release, chart = positional
            if chart.rstrip("/") not in ("charts/djinn-scheduler", "./charts/djinn-scheduler"):
                self.result(False, f"{where}: the chart is charts/djinn-scheduler, not {chart}")
                continue
            rendered = self.helm([release, self.args.chart] + out_args, f"{where} renders", files)
            if rendered is not None:
                self.result(True, f"{where} renders (as helm template)")
                self.rendered_config_ok(rendered, where)

    def variables(self, docs):
        names = set()
        for doc in docs:
            names.update(re.findall(r"\bDJINN_[A-Z0-9_]*[A-Z0-9]\b", doc.text))
        code = []
        for d in CODE_DIRS:
            for dirpath, dirs, files in os.walk(os.path.join(self.args.root, d)):
                rel = os.path.relpath(dirpath, self.args.root)
                # Not evidence that a name is real: build trees, fuzz inputs, this checker's own
                # test. (Relative paths: the clone itself may live under a build/ directory.)
                parts = rel.split(os.sep)
                if (any(p.startswith("build") or p in ("node_modules", "__pycache__") for p in parts)
                        or rel.startswith(os.path.join("tests", "fuzz", "corpus"))
                        or rel == os.path.join("scripts", "docs")):
                    continue
                for f in files:
                    if f == "check-docs.sh":
                        continue
                    try:
                        with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                            code.append(fh.read())
                    except (UnicodeDecodeError, OSError):
                        pass
        for f in CODE_FILES:
            with open(os.path.join(self.args.root, f), encoding="utf-8") as fh:
                code.append(fh.read())
        everything = "\n".join(code)
        unknown = sorted(n for n in names if not re.search(r"\b" + n + r"\b", everything))
        self.result(not unknown, f"every DJINN_* variable the documents name exists in the code, "
                                 f"scripts or chart ({len(names)} names) {unknown or ''}")

    def run(self, paths):
        docs = [Doc(p, self.args.root) for p in paths]
        counts = {"scheduler": 0, "helm-values": 0}
        for doc in docs:
            values_by_name = {}
            for line, lang, role, name, body in doc.blocks:
                if role == "helm-values" and name:
                    values_by_name[name] = self.file(name, body)
            for line, lang, role, name, body in doc.blocks:
                where = f"{doc.rel}:{line}"
                if role == "scheduler":
                    counts["scheduler"] += 1
                    self.scheduler_example(doc, line, lang, body)
                elif role == "helm-values":
                    counts["helm-values"] += 1
                    self.helm_values_example(doc, line, body)
                elif role == "not-config":
                    continue
                elif role:
                    self.result(False, f"{where}: unknown role `{role}` (scheduler, helm-values, not-config)")
                elif lang == "yaml":
                    self.result(False, f"{where}: a ```yaml block needs a role: ```yaml scheduler, "
                                       "```yaml helm-values or ```yaml not-config")
                elif lang in ("", "conf") and CONFIG_LINE.search(body):
                    self.result(False, f"{where}: looks like a scheduler config: mark it ```conf scheduler")
                if lang in ("sh", "bash", "console"):
                    self.helm_commands(doc, line, body, values_by_name)
        self.variables(docs)
        print(f"\nexamples: {counts['scheduler']} scheduler configs, {counts['helm-values']} Helm values, "
              f"in {len(docs)} documents")
        if self.failed:
            print(f"check-docs: {len(self.failed)} check(s) FAILED, {self.ok} ok")
            return 1
        print(f"check-docs: all {self.ok} checks ok")
        return 0


def leader_keys(body):
    """leader.key values set by a config example, in either language."""
    keys = []
    for m in re.finditer(r"leader\s*(?::\s*\{|\{)([^}]*)\}", body):  # one-line forms
        keys += re.findall(r"\bkey\s*:?\s*(0x[0-9a-fA-F]+|-?\d+)", m.group(1))
    for m in re.finditer(r"(?m)^leader:\s*\n((?:[ \t]+.*\n?)*)", body):  # block YAML
        keys += re.findall(r"(?m)^\s+key:\s*(0x[0-9a-fA-F]+|-?\d+)", m.group(1))
    for m in re.finditer(r"(?ms)^leader\s*\{\s*\n(.*?)^\}", body):  # block Djinn
        keys += re.findall(r"(?m)^\s*key\s+(0x[0-9a-fA-F]+|-?\d+)", m.group(1))
    return [int(k, 0) for k in keys]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("docs", nargs="+")
    args = ap.parse_args()
    checker = Checker(args)
    try:
        return checker.run(args.docs)
    finally:
        subprocess.run(["rm", "-rf", checker.work], check=False)


if __name__ == "__main__":
    sys.exit(main())
