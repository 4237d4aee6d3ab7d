#!/usr/bin/env bash
# The README's test command: set up, build, and run every test (multi-rank tests at 1-4
# ranks through mpirun; GPU tests are reported as skipped where there is no GPU).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
bash "$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
