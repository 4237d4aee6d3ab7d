#!/usr/bin/env bash
# Communication benchmark at 2 and 4 CPU ranks: reel's Communicator vs raw MPI on the
# same buffers. Prints markdown (the machine, then one table per rank count).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
bash "$root/scripts/build.sh" --target reel_comm_bench > /dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;"
echo "Open MPI $(mpirun --version | head -1 | awk '{print $NF}'), shared memory (vader); $(date -u +%F)."
for n in ${REEL_BENCH_RANKS:-2 4}; do
  echo; echo "### $n ranks"; echo
  mpirun --oversubscribe --bind-to none -np "$n" "$build/bench/reel_comm_bench" "$@"
done
