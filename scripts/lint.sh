#!/usr/bin/env bash
# The source checks CI runs (scripts/test.sh lint):
#   clang-format  every tracked C++ file is formatted as .clang-format says (no diff)
#   clang-tidy    src/ against .clang-tidy, warnings as errors, with the compile commands of a
#                 build tree (DJINN_LINT_BUILD_DIR, default build/lint: configured here)
#   scripts/lint.sh            both
#   scripts/lint.sh format     only clang-format
# Exits non-zero with the findings on stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
what=${1:-all}
status=0

if [ "$what" = all ] || [ "$what" = format ]; then
    echo "=== clang-format ($(clang-format --version | head -1))"
    mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
    bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -c 'warning:' || true)
    if [ "$bad" != 0 ]; then
        clang-format --dry-run "${files[@]}" 2>&1 | grep 'warning:' | cut -d: -f1 | sort | uniq -c
        echo "clang-format: $bad place(s) differ; run: clang-format -i \$(git ls-files '*.cpp' '*.hpp')"
        status=1
    else
        echo "clang-format: ${#files[@]} files formatted"
    fi
fi

if [ "$what" = all ] || [ "$what" = tidy ]; then
    build=${DJINN_LINT_BUILD_DIR:-$root/build/lint}
    echo "=== clang-tidy ($(clang-tidy --version | grep -o 'version [0-9.]*')) over src/"
    cmake -S "$root" -B "$build" -DDJINN_FAILPOINTS=ON -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
    # The generated module include directories (cmake/Modules.cmake) exist after configure.
    mapfile -t sources < <(git ls-files 'src/*.cpp')
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    # g++'s own warning flags are unknown to clang: not findings.
    printf '%s\n' "${sources[@]}" | xargs -P"$(nproc)" -n4 clang-tidy -p "$build" --quiet \
        --extra-arg=-Wno-unknown-warning-option >"$out" 2>/dev/null || true
    findings=$(grep -c -E '(warning|error): .*\[[a-z]' "$out" || true)
    if [ "$findings" != 0 ]; then
        grep -E -A3 '(warning|error): .*\[[a-z]' "$out" | head -200
        echo "clang-tidy: $findings finding(s)"
        status=1
    else
        echo "clang-tidy: ${#sources[@]} files, no findings"
    fi
fi
exit $status
