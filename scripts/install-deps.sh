#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs to build, test and run its demo:
# dist/build-deps.txt and dist/test-deps.txt (one package per line). Idempotent and quick when
# everything is there. Needs root (or sudo).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

mapfile -t wanted < <(grep -hv '^\s*\(#\|$\)' "$root/dist/build-deps.txt" "$root/dist/test-deps.txt")
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" != 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's redis-server package starts a system Redis where systemd runs; the project never uses
# it (tests and the demo start their own on free ports), so leave it alone.
