#!/usr/bin/env bash
# Set up (scripts/setup.sh), configure and build reel into build/ (or $REEL_BUILD_DIR).
# Extra arguments are passed to `cmake --build` (e.g. --target reel).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
bash "$root/scripts/setup.sh"
# ccache: share hits between checkouts in different folders; the precompiled headers
# need the sloppiness settings to be cacheable at all.
export CCACHE_BASEDIR=$root
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${REEL_CMAKE_ARGS:-} > "$build/configure.log" 2>&1 \
  || { cat "$build/configure.log"; exit 1; }
grep -E "^-- reel " "$build/configure.log" || true
cmake --build "$build" -j "$(nproc)" "$@"
