#!/usr/bin/env bash
# Sequence-parallel benchmarks on 4 CPU ranks (bench/sp_bench.cpp): the longest clip per
# memory budget at sp = 1, 2, 4 per mode; attention bytes against the analytic volume;
# tokens/s against dp only; ring overlap and frame-causal balance. Prints markdown.
#   bench/sp_bench.sh [--budget MiB]   (default 128; a few minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
bash "$root/scripts/build.sh" --target reel_sp_bench > /dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores, 4 ranks x 1 thread; long_cpu preset (dim 64, depth 2, 4 heads, 64 tokens per frame-group); $(date -u +%F)."
mpirun --oversubscribe --bind-to none -np 4 "$build/bench/reel_sp_bench" --budget 128 "$@"
