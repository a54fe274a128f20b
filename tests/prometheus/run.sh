#!/usr/bin/env bash
# The chart's alerts and dashboard, evaluated by Debian's Prometheus 2.42 and promtool:
#   1. promtool test rules: unit tests of every alert of the chart's PrometheusRule (rendered
#      with the default values) and of deploy/components/monitoring, each fired and kept
#      silent (chart-rules.test.yaml, kustomize-rules.test.yaml; rules_coverage.py checks
#      that every alert has both cases);
#   2. a live test (promtest.py): 3 replicas of the scheduler with the chart's ConfigMap config
#      against a throwaway PostgreSQL 15 and Redis 7, two real Prometheus servers scraping them
#      with the relabelling of the chart's ServiceMonitor and of its PodMonitor, the chart's
#      rendered PrometheusRule loaded (DjinnSchedulerNoLeader's `for` shortened to 15 s through
#      metrics.prometheusRule.noLeaderMinutes), checked through the HTTP API: series and labels,
#      rule health, no alert while a leader runs or across a failover, every dashboard query,
#      promtool check metrics on a live /metrics, NoLeader firing once every replica is stopped.
#
#   tests/prometheus/run.sh [--bin PATH] [--rules-only]
#
#   --bin PATH     the djinn-scheduler binary (default: $DJINN_SCHEDULER_BIN, else
#                  build/ci-ON/djinn-scheduler, the sanitized build of scripts/test.sh)
#   --rules-only   only step 1 (no services, no binary)
# Everything listens on 127.0.0.1; everything it starts is stopped and its files removed at
# exit, also on failure. About 2 minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/tests/prometheus"
chart="$root/charts/djinn-scheduler"

bin=${DJINN_SCHEDULER_BIN:-$root/build/ci-ON/djinn-scheduler}
rules_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --bin=*) bin=${1#--bin=}; shift ;;
        --rules-only) rules_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

for tool in prometheus promtool python3 psql redis-cli; do
    command -v "$tool" >/dev/null || { echo "prometheus test: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done
# A sanitized binary reports libpqxx 6.4's known leak at exit (tests/lsan.supp), as elsewhere.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}

helm=$("$root/scripts/check-packaging.sh" helm-path)
work=$(mktemp -d "${TMPDIR:-/tmp}/djinn-prometheus.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"

section() { printf '\n=== %s\n' "$*"; }
spec_of() {  # spec_of FILE: the spec of the one PrometheusRule in a rendering, as a rules file
    python3 -c 'import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "PrometheusRule"]
assert len(docs) == 1, f"{len(docs)} PrometheusRules in {sys.argv[1]}"
yaml.safe_dump(docs[0]["spec"], sys.stdout, sort_keys=False)' "$1"
}

# The release every test uses: "djinn-scheduler" in namespace "djinn" (the pods are
# djinn-scheduler-<hash>-<id>, what the alerts select). No image is published; the name only
# has to be set for the chart to render.
release=(djinn-scheduler "$chart" --namespace djinn --set image.registry=localhost
    --set image.repository=djinn-scheduler --set image.tag=ci)

section "promtool test rules (every alert fired and kept silent)"
mkdir -p "$work/rules"
"$helm" template "${release[@]}" --set metrics.prometheusRule.enabled=true >"$work/rules/default.yaml"
spec_of "$work/rules/default.yaml" >"$work/rules/chart.rules.yaml"
spec_of "$root/deploy/components/monitoring/prometheusrule.yaml" >"$work/rules/kustomize.rules.yaml"
cp "$here/chart-rules.test.yaml" "$here/kustomize-rules.test.yaml" "$work/rules/"
promtool check rules "$work/rules/chart.rules.yaml" "$work/rules/kustomize.rules.yaml"
(cd "$work/rules" && promtool test rules chart-rules.test.yaml kustomize-rules.test.yaml)
echo "--- chart alerts (templates/prometheusrule.yaml) and the tests that fire each"
python3 "$here/rules_coverage.py" "$work/rules/chart.rules.yaml" "$work/rules/chart-rules.test.yaml"
echo "--- deploy/components/monitoring alerts"
python3 "$here/rules_coverage.py" "$work/rules/kustomize.rules.yaml" "$work/rules/kustomize-rules.test.yaml"

if [ "$rules_only" = 1 ]; then
    exit 0
fi

[ -x "$bin" ] || { echo "prometheus test: no djinn-scheduler binary at $bin (scripts/test.sh build)" >&2; exit 2; }

section "live: 3 replicas, Prometheus 2.42 with the chart's ServiceMonitor and PodMonitor"
# shellcheck source=scripts/lib/services.sh
source "$root/scripts/lib/services.sh"
services_start
trap 'rc=$?; rm -rf "$work"; (exit $rc); services_stop' EXIT
psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DJINN_TEST_PGPORT" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE djinn TEMPLATE djinn_template"
# Good crons only (a skipped cron fires DjinnSchedulerCronsSkipped, rightly): three due now,
# more falling due while the test runs.
"${psql[@]}" -d djinn -c "
INSERT INTO users (id, email, username, password) VALUES (1, 'prom@example.com', 'prom', '\x00');
INSERT INTO cron (user_id, author_id, name, schedule, manifest, next_run)
SELECT 1, 1, 'prometheus ' || n, 'daily',
       E'driver:\n  type: docker\n  image: debian:bookworm\nstages: [test]\njobs:\n- stage: test\n  commands: [true]\n',
       (now() AT TIME ZONE 'UTC') + (n - 3) * interval '10 seconds'
FROM generate_series(1, 12) AS n;" >/dev/null

live=("${release[@]}" --set config.database.host=127.0.0.1 --set config.database.port="$DJINN_TEST_PGPORT"
    --set config.database.name=djinn --set config.redis.host=127.0.0.1
    --set config.redis.port="$DJINN_TEST_REDIS_PORT" --set config.interval=5s
    --set-string secret.databasePassword=secret --set-string secret.cryptoSalt=prometheus-salt
    --set metrics.prometheusRule.enabled=true --set-json metrics.prometheusRule.noLeaderMinutes=0.25)
"$helm" template "${live[@]}" --set metrics.serviceMonitor.enabled=true \
    --set metrics.serviceMonitor.interval=1s --set metrics.serviceMonitor.scrapeTimeout=1s \
    >"$work/servicemonitor.yaml"
"$helm" template "${live[@]}" --set metrics.podMonitor.enabled=true \
    --set metrics.podMonitor.interval=1s --set metrics.podMonitor.scrapeTimeout=1s \
    >"$work/podmonitor.yaml"

ports=()
for _ in 1 2 3 4 5; do ports+=("$(free_port)"); done
# The replicas get the Secret's values as the Deployment's env would.
DJINN_DATABASE_PASSWORD=secret DJINN_CRYPTO_SALT=prometheus-salt \
    python3 "$here/promtest.py" --bin "$bin" --workdir "$work" --replicas 3 \
    --ports "$(IFS=,; echo "${ports[*]}")" \
    --servicemonitor-rendering "$work/servicemonitor.yaml" \
    --podmonitor-rendering "$work/podmonitor.yaml" \
    --kustomize-rules "$root/deploy/components/monitoring/prometheusrule.yaml" \
    --dashboard "$root/deploy/components/monitoring/djinn-scheduler-dashboard.json"
