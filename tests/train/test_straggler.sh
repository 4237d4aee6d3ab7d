#!/usr/bin/env bash
# log.straggler_every: the slow rank, named. 4 ranks of the tiny model (on however few
# cores), 60 steps, a window of 10 steps, the default threshold:
#  - rank 2 sleeps SLOW_MS in its compute phase every step (REEL_TEST_SLOW_RANK, test-only):
#    metrics.jsonl names rank 2 with phase compute by the second window (step 20), in
#    every window after, never another rank, and ranks 0, 1, 3 as having waited for it;
#    the log warns naming rank 2;
#  - the same run with no rank slowed names no rank, in metrics.jsonl or the log (no false
#    alarm from 4 ranks sharing the cores).
# Usage: test_straggler.sh path/to/reel path/to/python [SLOW_MS]
set -uo pipefail
reel=$1 python=$2 slow_ms=${3:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$reel" data --out "$work/world.h5" --clips 48 --seed 3 > /dev/null || fail "reel data"
# run DIR ENV...: 4 ranks, 60 steps; fails the test with the log's tail.
run() {
  local dir=$1
  shift
  env "$@" timeout 300 mpirun --oversubscribe --bind-to none -np 4 "$reel" train --data.path "$work/world.h5" \
    --data.eval_clips 8 --data.global_batch 8 --run.steps 60 --run.eval_every 0 --run.rollout_steps 0 \
    --run.plot false --run.log_every 1000 --run.peak_flops 1e11 --dist.threads 1 --model.preset tiny \
    --log.straggler_every 10 --run.dir "$work/$dir" > "$work/$dir.log" 2>&1 ||
    { tail -n 20 "$work/$dir.log"; fail "$dir: reel train failed"; }
}
run slow REEL_TEST_SLOW_RANK=2 REEL_TEST_SLOW_MS="$slow_ms"
run even
grep -q "straggler: rank 2 (host .*) is [0-9]*% slower than the median rank in compute" "$work/slow.log" ||
  { grep straggler "$work/slow.log"; fail "the log does not warn about rank 2"; }
grep -q "straggler:" "$work/even.log" && { grep straggler "$work/even.log"; fail "a run with no slow rank named one"; }
"$python" - "$work" <<'PY' || exit 1
import json, sys
work = sys.argv[1]
def fail(why):
    print("FAIL:", why)
    sys.exit(1)
def named(run):
    lines = [json.loads(l) for l in open(f"{work}/{run}/metrics.jsonl")]
    return {l["step"]: l["straggler"] for l in lines if "straggler" in l}
slow, even = named("slow"), named("even")
if even:
    fail(f"no rank is slowed, yet metrics.jsonl names {even}")
if not slow or min(slow) > 20:
    fail(f"rank 2 not named by the second window (step 20): {slow}")
for step, s in slow.items():
    if step % 10:
        fail(f"a report at step {step}, not at a window's end")
    if s["rank"] != 2 or "others" in s:
        fail(f"step {step} names another rank than rank 2: {s}")
    if s["phase"] != "compute" or s["excess"] <= 0 or not s["host"]:
        fail(f"step {step}: {s}")
    if sorted(s["victims"]) != [0, 1, 3]:
        fail(f"step {step}: the victims are {s['victims']}, not ranks 0, 1, 3")
missing = [w for w in range(min(slow), 61, 10) if w not in slow]
if missing:
    fail(f"rank 2 stayed slow, yet the windows ending at {missing} do not name it")
excess = sorted(s["excess"] for s in slow.values())
print(f"slow rank named at steps {sorted(slow)}, excess {excess[0]:.2f}..{excess[-1]:.2f}")
PY
echo "straggler named: rank 2 slowed by ${slow_ms} ms, no false alarm: ok"
