#!/usr/bin/env bash
# log.trace: the timeline of every rank (dist/trace.hpp), checked by check_trace.py.
#  - 2 ranks, ZeRO-3 with full activation checkpointing, prefetch and asynchronous
#    reduction (spans on the progress thread, recomputations, waits), a checkpoint saved
#    inside the traced steps 3-4;
#  - 4 ranks, the tiny preset's layout, each rank's clock skewed by rank x 40 ms
#    (REEL_TRACE_TEST_SKEW_US): the alignment must bring the barrier's exits together;
#  - a bad range is a usage error naming log.trace, before any rank starts.
# Usage: test_trace.sh path/to/reel path/to/python3 path/to/check_trace.py
set -uo pipefail
reel=$1 python=$2 check=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$reel" data --out "$work/world.h5" --clips 40 --seed 3 > /dev/null || fail "reel data"
# train NP DIR ARGS...: trains NP ranks for 6 steps, or fails the test with the log's tail.
train() {
  local np=$1 dir=$2
  shift 2
  timeout 300 mpirun --oversubscribe --bind-to none -x REEL_TRACE_TEST_SKEW_US -np "$np" "$reel" train \
    --data.path "$work/world.h5" --data.eval_clips 8 --data.global_batch 8 --run.steps 6 --run.eval_every 0 \
    --run.log_every 1000 --run.plot false --run.rollout_steps 0 --run.peak_flops 1e11 --dist.threads 1 \
    --model.dim 32 --model.depth 2 --run.dir "$work/$dir" --log.trace 3-4 "$@" > "$work/$dir.log" 2>&1 ||
    { tail -n 20 "$work/$dir.log"; fail "$dir: reel train failed"; }
}
export REEL_TRACE_TEST_SKEW_US=0
train 2 two --parallel.activation_checkpoint full --parallel.reshard_after_forward true --parallel.prefetch true \
  --parallel.async_reduce true --checkpoint.every 4
"$python" "$check" "$work/two" 2 3 4 --recompute || fail "2 ranks"
grep -q '"checkpoint.save"' "$work/two/trace/trace.json" || fail "2 ranks: the checkpoint after step 4 is not traced"
export REEL_TRACE_TEST_SKEW_US=40000
train 4 four --parallel.reshard_after_forward false
"$python" "$check" "$work/four" 4 3 4 || fail "4 ranks"
out=$("$reel" train --data.path "$work/world.h5" --run.dir "$work/bad" --log.trace 4-3 2>&1) && fail "log.trace 4-3 accepted"
echo "$out" | grep -q "log.trace '4-3': the last step is before the first" || fail "bad range: $out"
echo "log.trace: ok"
