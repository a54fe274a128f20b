#!/usr/bin/env bash
# The chart's pods, run for real: the rendered Deployment, ConfigMap and Secret as pods of the
# container image (podman 4.3 `kube play`, catatonit as its pause process), against a
# throwaway PostgreSQL 15 and Redis 7 on loopback, then one `kubectl rollout restart` after
# another (at least two, until the last of 60 crons falling due 0.5 s apart is due);
# tests/pods/drill.py says what it adapts and checks.
#
#   tests/pods/run.sh
#
# Environment:
#   DJINN_IMAGE_TAG  the image (default localhost/djinn-scheduler:ci, what
#                    `scripts/check-packaging.sh image` builds; built with it when missing)
# Host network and 127.0.0.1 only. Every pod, volume, secret, service and file it made is
# removed at exit, also on failure. About 2 minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$root/tests/pods"
image=${DJINN_IMAGE_TAG:-localhost/djinn-scheduler:ci}
crons=60

for tool in podman catatonit python3 psql redis-cli; do
    command -v "$tool" >/dev/null || { echo "pods: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "pods: needs root (podman's storage, as the image stage)" >&2; exit 2; }
if ! podman image exists "$image"; then
    echo "pods: no image $image: building it with scripts/check-packaging.sh image"
    DJINN_IMAGE_TAG=$image "$root/scripts/check-packaging.sh" image
fi

helm=$("$root/scripts/check-packaging.sh" helm-path)
work=$(mktemp -d "${TMPDIR:-/tmp}/djinn-pods.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
# podman's default RLIMIT_NOFILE (1048576) is above this machine's hard limit, and kube play
# has no --ulimit: the same limits as the image stage's `podman run`, through containers.conf.
printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"

# shellcheck source=scripts/lib/services.sh
source "$root/scripts/lib/services.sh"
services_start
trap 'rc=$?; rm -rf "$work"; (exit $rc); services_stop' EXIT
echo "pods: PostgreSQL 127.0.0.1:$DJINN_TEST_PGPORT, Redis 127.0.0.1:$DJINN_TEST_REDIS_PORT"

# Passwords only the Secret knows: the scheduler role's, and Redis's (requirepass). The pods
# get them from the Secret, or they never become ready.
random() { python3 -c 'import secrets; print(secrets.token_hex(12))'; }
db_password=$(random)
redis_password=$(random)
salt=$(random)
psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DJINN_TEST_PGPORT" -U postgres)
"${psql[@]}" -d postgres -c "ALTER ROLE djinn_scheduler PASSWORD '$db_password'"
"${psql[@]}" -d postgres -c "CREATE DATABASE djinn TEMPLATE djinn_template"
redis-cli -h 127.0.0.1 -p "$DJINN_TEST_REDIS_PORT" CONFIG SET requirepass "$redis_password" >/dev/null
# One user; tests/pods/drill.py adds crons falling due through the rollouts.
"${psql[@]}" -d djinn -c "INSERT INTO users (id, email, username, password) VALUES (1, 'pods@example.com', 'pods', '\x00')" >/dev/null

# The chart as an operator installs it, pointed at the loopback services: the image just
# built, the Secret made by the chart, a short interval so that crons are dispatched as they
# fall due. Everything else (probes, strategy, grace period, security) is the chart's default.
"$helm" template djinn-scheduler "$root/charts/djinn-scheduler" --namespace djinn \
    --set image.registry="${image%%/*}" --set image.repository="$(r=${image#*/}; echo "${r%:*}")" \
    --set image.tag="${image##*:}" --set image.pullPolicy=Never \
    --set config.database.host=127.0.0.1 --set config.database.port="$DJINN_TEST_PGPORT" \
    --set config.database.name=djinn --set config.redis.host=127.0.0.1 \
    --set config.redis.port="$DJINN_TEST_REDIS_PORT" --set config.redis.auth=true \
    --set config.interval=2s \
    --set-string secret.databasePassword="$db_password" --set-string secret.redisPassword="$redis_password" \
    --set-string secret.cryptoSalt="$salt" >"$work/rendered.yaml"

ports=()
for _ in $(seq 1 24); do ports+=("$(free_port)"); done
python3 "$here/drill.py" --rendered "$work/rendered.yaml" --workdir "$work" \
    --ports "$(IFS=,; echo "${ports[*]}")" --crons "$crons" \
    --psql "psql -X -q -h 127.0.0.1 -p $DJINN_TEST_PGPORT -U postgres -d djinn" \
    --redis-cli "redis-cli -h 127.0.0.1 -p $DJINN_TEST_REDIS_PORT -a $redis_password --no-auth-warning"
