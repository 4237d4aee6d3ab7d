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
# A rank that dies (SIGKILL) under srun --kill-on-bad-exit ends the whole step quickly,
# non-zero, instead of leaving the other rank waiting.
work=$(mktemp -d)
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null
srun --mpi=pmix --kill-on-bad-exit=1 -n 2 "$reel" train --data.path "$work/world.h5" --data.eval_clips 8 \
  --run.dir "$work/run" --run.steps 100000 --run.log_every 100000 --dist.threads 1 > "$work/out.log" 2>&1 &
step=$!
for _ in $(seq 120); do [ "$(wc -l < "$work/run/metrics.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.5; done
victim=$(pgrep -f "run.dir $work/run" | grep -v "^$step\$" | tail -n 1)
if [ -z "$victim" ]; then
  echo "FAIL: no rank process found"; fail=1
else
  kill -KILL "$victim"
  start=$(date +%s)
  wait $step
  rc=$?
  took=$(( $(date +%s) - start ))
  [ $rc -ne 0 ] || { echo "FAIL: srun exited 0 after a rank was killed"; fail=1; }
  [ $took -le 30 ] || { echo "FAIL: the step took $took s to end after a rank died"; fail=1; }
  echo "a killed rank ended the srun step in $took s (exit $rc)"
fi
rm -rf "$work"
[ $fail -eq 0 ] && echo "srun launch: ok"
exit $fail
