#!/usr/bin/env bash
# TensorBoard: `reel train --log.tensorboard` on 2 CPU ranks writes event files as it goes
# (12 steps, evaluations at 4, 8, 12), read back with TensorBoard's own reader and equal
# to metrics.jsonl at every step; a run resumed from its step-8 checkpoint (metrics.jsonl
# cut back to step 8) has every step once, with the resumed run's values; `reel
# tensorboard` converts a run again (twice: still no duplicate) and follows one that grows;
# a directory without metrics is a clear error.
# Usage: test_tensorboard.sh path/to/reel path/to/python path/to/source
set -euo pipefail
reel=$1 python=$2 root=$3
check="$python $root/tests/launch/check_tensorboard.py"
dir=$(mktemp -d)
follower=""
trap '[ -n "$follower" ] && kill "$follower" 2>/dev/null; rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$dir/world.h5" --clips 40 --seed 1 > /dev/null
train() {
  mpirun --oversubscribe --bind-to none -np 2 "$reel" train --data.path "$dir/world.h5" --run.dir "$dir/run" \
    --run.steps 12 --data.global_batch 8 --data.eval_clips 4 --run.eval_every 4 --checkpoint.every 4 \
    --checkpoint.keep 0 --run.log_every 100 --run.peak_flops 1e11 --run.plot false --dist.threads 1 \
    --log.tensorboard "$@"
}
train > "$dir/train.log" 2>&1 || { cat "$dir/train.log"; echo "FAIL: training with --log.tensorboard"; exit 1; }
grep -q "TensorBoard: events in $dir/run/tensorboard" "$dir/train.log" \
  || { cat "$dir/train.log"; echo "FAIL: no TensorBoard events said"; exit 1; }
$check "$dir/run/metrics.jsonl" "$dir/run/tensorboard" --eval-steps 4,8,12

# Resume from step 8: the events held steps 9..12 of the first run; now they are the second's.
cp "$dir/run/metrics.jsonl" "$dir/first.jsonl"
ckpt=$dir/run/checkpoints/step_00000008
[ -d "$ckpt" ] || { ls -R "$dir/run"; echo "FAIL: no step-8 checkpoint"; exit 1; }
train --run.resume "$ckpt" > "$dir/resume.log" 2>&1 || { cat "$dir/resume.log"; echo "FAIL: the resumed run"; exit 1; }
grep -q "resumed from" "$dir/resume.log" || { cat "$dir/resume.log"; echo "FAIL: the run did not resume"; exit 1; }
cmp -s "$dir/first.jsonl" "$dir/run/metrics.jsonl" && { echo "FAIL: the resumed run left metrics.jsonl as it was"; exit 1; }
$check "$dir/run/metrics.jsonl" "$dir/run/tensorboard" --eval-steps 4,8,12

# Converted again, elsewhere, twice; a run directory without metrics.
for i in 1 2; do
  "$reel" tensorboard "$dir/run" --out "$dir/tb" | grep -q "wrote steps up to 12 to $dir/tb" \
    || { echo "FAIL: reel tensorboard"; exit 1; }
done
$check "$dir/run/metrics.jsonl" "$dir/tb" --eval-steps 4,8,12
mkdir -p "$dir/none"
if "$reel" tensorboard "$dir/none" > "$dir/none.err" 2>&1; then echo "FAIL: reel tensorboard of no run succeeded"; exit 1; fi
grep -q "$dir/none/metrics.jsonl: no such file" "$dir/none.err" \
  || { echo "FAIL: reel tensorboard of no run: $(cat "$dir/none.err")"; exit 1; }

# --follow: the steps a growing metrics.jsonl gains reach the events within seconds; the
# converter's lock refuses a second conversion into the same folder; Ctrl-C ends it cleanly.
mkdir -p "$dir/grow"
head -5 "$dir/run/metrics.jsonl" > "$dir/grow/metrics.jsonl"
"$reel" tensorboard "$dir/grow" --follow > "$dir/follow.log" 2>&1 &
follower=$!
wait_for() {  # wait_for N: until the events hold N steps (60 s at most)
  for _ in $(seq 120); do
    head -"$1" "$dir/run/metrics.jsonl" > "$dir/want.jsonl"
    $check "$dir/want.jsonl" "$dir/grow/tensorboard" > /dev/null 2>&1 && return 0
    sleep 0.5
  done
  cat "$dir/follow.log"; $check "$dir/want.jsonl" "$dir/grow/tensorboard" || true
  echo "FAIL: --follow did not write $1 steps"; exit 1
}
wait_for 5
if "$reel" tensorboard "$dir/grow" > "$dir/locked.err" 2>&1; then echo "FAIL: a second conversion was not refused"; exit 1; fi
grep -q "is being written by another conversion" "$dir/locked.err" || { cat "$dir/locked.err"; echo "FAIL: lock message"; exit 1; }
tail -n +6 "$dir/run/metrics.jsonl" >> "$dir/grow/metrics.jsonl"
wait_for 12
kill -INT $(ps -o pid= --ppid "$follower")  # the script, as Ctrl-C would reach it
wait "$follower" || { cat "$dir/follow.log"; echo "FAIL: --follow did not end cleanly on Ctrl-C"; exit 1; }
follower=""
echo "tensorboard: live events equal metrics.jsonl, a resume writes no step twice, reel tensorboard converts: ok"
