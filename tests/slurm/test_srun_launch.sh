#!/usr/bin/env bash
# reel under a real Slurm (localhost): `srun --mpi=pmix` gives one world of N ranks;
# `srun --mpi=none` (N singletons) is refused with a message naming the fix.
# Usage: test_srun_launch.sh path/to/reel
set -uo pipefail
reel=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/local_cluster.sh"
slurm_start || exit 1
fail=0
out=$(srun --mpi=pmix -n 2 "$reel" smoke --mib 1 --parallel.sp 2 2>&1)
echo "$out" | tail -3
echo "$out" | grep -q "2 rank(s) via srun" || { echo "FAIL: srun --mpi=pmix did not give one 2-rank world"; fail=1; }
echo "$out" | grep -q "all collectives correct" || { echo "FAIL: smoke under srun"; fail=1; }
out=$(srun --mpi=none -n 2 "$reel" smoke --mib 1 2>&1)
echo "$out" | grep -q "without PMIx, so MPI cannot form one job" \
  || { echo "FAIL: srun --mpi=none was not refused clearly:"; echo "$out" | tail -5; fail=1; }
[ $fail -eq 0 ] && echo "srun launch: ok"
exit $fail
