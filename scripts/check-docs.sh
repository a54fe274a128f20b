#!/usr/bin/env bash
# Checks the documentation's examples against the real program and chart
# (scripts/docs/check_docs.py says what a block's info string means):
#   - every scheduler config example of README.md, docs/*.md, CHANGELOG.md and the chart's
#     README (```conf scheduler: Djinn's language, ```yaml scheduler: YAML) passes
#     `djinn-scheduler -check-config`, names only the real ${VAR}s and keeps the default
#     leader.key;
#   - every Helm values example renders with `helm template`, and so does every
#     `helm install`/`helm upgrade` command; the ConfigMaps they render pass -check-config;
#   - every DJINN_* variable the documents name exists in the code, scripts or chart.
#
#   scripts/check-docs.sh [--bin PATH]
#
#   --bin PATH   the djinn-scheduler binary (default: $DJINN_SCHEDULER_BIN, else
#                build/ci-ON/djinn-scheduler, the build of scripts/test.sh)
# Needs no services. A few seconds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${DJINN_SCHEDULER_BIN:-$root/build/ci-ON/djinn-scheduler}
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --bin=*) bin=${1#--bin=}; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-docs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "check-docs: no djinn-scheduler binary at $bin (scripts/test.sh build)" >&2; exit 2; }
# A sanitized binary reports libpqxx 6.4's known leak at exit (tests/lsan.supp), as elsewhere.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}

helm=$("$root/scripts/check-packaging.sh" helm-path)
work=$(mktemp -d "${TMPDIR:-/tmp}/djinn-check-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/cache" HELM_CONFIG_HOME="$work/config" HELM_DATA_HOME="$work/data"

cd "$root"
docs=(README.md CHANGELOG.md charts/djinn-scheduler/README.md docs/*.md)
python3 "$root/scripts/docs/check_docs.py" --root "$root" --bin "$bin" --helm "$helm" \
    --chart "$root/charts/djinn-scheduler" "${docs[@]}"

# The checker must bite: a document with the README's old mistakes (one-line blocks without
# `;`, a leader key that is not the default, a misnamed password variable, a YAML block with
# no role, an unmarked config) must fail, for each of these reasons.
bad="$work/bad.md"
cat >"$bad" <<'MD'
```conf scheduler
redis { addr "localhost:6379" password "${DJINN_REDIS_PASSWORD}" }
```

```yaml scheduler
database: {password: "${DJINN_DB_PASSWORD}"}
leader: {key: 7235451158391808872}
```

```yaml
log: {info: /dev/stdout}
```

```
interval 1m
database { name "djinn" }
```

Set DJINN_DB_PASSWORD before starting it.
MD
echo
echo "--- the checker on a document with known mistakes (must fail for each)"
if python3 "$root/scripts/docs/check_docs.py" --root "$root" --bin "$bin" --helm "$helm" \
    --chart "$root/charts/djinn-scheduler" "$bad" >"$work/bad.log" 2>&1; then
    cat "$work/bad.log"
    echo "check-docs: FAIL: the checker accepted a document with known mistakes"
    exit 1
fi
expect=("bad.md:1: Djinn-language example passes -check-config"
    "bad.md:5: YAML example passes -check-config"
    "bad.md:5: leader.key 7235451158391808872 equals the default"
    "bad.md:10: a \`\`\`yaml block needs a role"
    "bad.md:14: looks like a scheduler config"
    "every DJINN_\* variable the documents name exists.*DJINN_DB_PASSWORD")
for e in "${expect[@]}"; do
    grep -q "^FAIL  .*$e" "$work/bad.log" || { cat "$work/bad.log"; echo "check-docs: FAIL: no failure for: $e"; exit 1; }
done
echo "ok    rejected, for each of the ${#expect[@]} planted mistakes"
