#!/usr/bin/env bash
# The data file rewritten under a running job: the next read fails naming the file and
# the clip, and the job ends with an error (not hours of training on mixed data).
# Usage: test_data_change.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
"$reel" data --out "$work/other.h5" --clips 60 --seed 5 > /dev/null || exit 1
timeout 120 mpirun --oversubscribe --bind-to none -np 2 "$reel" train --config "$root/configs/tiny.ini" \
  --data.path "$work/world.h5" --run.dir "$work/run" --run.steps 100000 --run.log_every 1000 \
  --dist.threads 1 > "$work/out.log" 2>&1 &
pid=$!
for _ in $(seq 120); do [ "$(wc -l < "$work/run/metrics.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.5; done
cp "$work/other.h5" "$work/world.h5"  # rewritten in place (HDF5's own lock would stop reel data)
wait "$pid"
rc=$?
cat "$work/out.log" | grep -v "\] \[info\]" | tail -n 5
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { echo "FAIL: exit $rc (0: unnoticed; 124: it hung)"; exit 1; }
grep -q "world.h5: changed under the running job while reading clip [0-9]*" "$work/out.log" \
  || { echo "FAIL: the change was not reported with the file and clip"; exit 1; }
echo "a data file rewritten under the job is an error: ok"
