#!/usr/bin/env bash
# Applies .clang-format to every tracked C++ file (CONTRIBUTING.md), or with --check
# lists the files that differ from it and fails (the test style.format).
#   bash scripts/format.sh [--check]
# CLANG_FORMAT names the binary (default: clang-format, Debian 12's 14: scripts/setup.sh
# installs it; another version may format some lines differently).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tool=${CLANG_FORMAT:-clang-format}
command -v "$tool" > /dev/null || { echo "format: $tool not found (bash scripts/setup.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.cu' '*.h')
# Untracked new files too, when there is a work tree with some.
mapfile -t new < <(git ls-files --others --exclude-standard '*.cpp' '*.hpp' '*.cu' '*.h')
files+=("${new[@]}")
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    "$tool" --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    echo "format: ${#bad[@]} file(s) differ from .clang-format (bash scripts/format.sh fixes them):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files as .clang-format says: ok"
  exit 0
fi
"$tool" -i "${files[@]}"
echo "format: formatted ${#files[@]} files"
