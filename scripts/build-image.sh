#!/usr/bin/env bash
# Builds the djinn-scheduler container image from the Dockerfile, and optionally pushes it.
# No image is published by the project: build and push your own, then point the Helm chart
# at it (image.registry, image.repository, image.tag).
#
#   scripts/build-image.sh [--tag IMAGE] [--push] [--builder docker|buildah]
#                          [--base-image IMAGE] [-- BUILDER-ARGS...]
#
#   --tag IMAGE         image name (default djinn-scheduler:<version>); to push, name the
#                       registry: registry.example.com/ci/djinn-scheduler:0.1.0
#   --push              push IMAGE after the build (log in first: docker login / buildah login)
#   --builder B         docker or buildah (default: docker if it is installed, else buildah)
#   --base-image IMAGE  Debian 12 base of both stages (default debian:bookworm-slim; CI uses a
#                       locally debootstrapped one, scripts/check-packaging.sh image)
#   -- ARGS             passed to the builder as they are (e.g. --isolation chroot --layers)
#
# The build stage compiles and runs the unit tests (a failing test fails the build); the
# image is labelled with the version, the git commit and the commit's time, so the same
# commit gives the same build arguments (and a builder's layer cache can reuse the compile).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's/^project(djinn-scheduler VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
tag="djinn-scheduler:$version"
push=0
builder=""
base=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --push) push=1; shift ;;
        --builder) builder=$2; shift 2 ;;
        --base-image) base=$2; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
if [ -z "$builder" ]; then
    if command -v docker >/dev/null 2>&1; then builder=docker
    elif command -v buildah >/dev/null 2>&1; then builder=buildah
    else echo "build-image.sh: neither docker nor buildah is installed" >&2; exit 2
    fi
fi
case "$builder" in
    docker|buildah) command -v "$builder" >/dev/null || { echo "build-image.sh: $builder is not installed" >&2; exit 2; } ;;
    *) echo "build-image.sh: --builder is docker or buildah, not $builder" >&2; exit 2 ;;
esac

revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git -C "$root" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
    date -u +%Y-%m-%dT%H:%M:%SZ)
args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created")
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")

echo "build-image: $builder build -t $tag (version $version, revision ${revision:0:12})"
if [ "$builder" = docker ]; then
    docker build "${args[@]}" "${extra[@]}" -t "$tag" -f "$root/Dockerfile" "$root"
else
    buildah build "${args[@]}" "${extra[@]}" -t "$tag" -f "$root/Dockerfile" "$root"
fi
if [ "$push" = 1 ]; then
    echo "build-image: pushing $tag"
    "$builder" push "$tag"
fi
echo "build-image: built $tag"
