#!/usr/bin/env bash
# A run directory survives what a cluster does to it (2 ranks under mpirun, tiny model):
#   1. a crash at any moment resumes: a rank is SIGKILLed before, during (inside the
#      checkpoint writer) and after the first checkpoint; the same command then finishes
#      the run with per-step losses identical to an uninterrupted run, every step once;
#   2. a run directory with metrics.jsonl and no checkpoint (the issue's repro) starts
#      afresh, saying so;
#   3. a second run into a directory in use is refused at once, naming the holder, and
#      the first run finishes untouched;
#   4. a torn last metrics line (an older version's crash mid-write) is dropped on resume;
#   5. advice is safe: a changed model option names the field last and never suggests
#      --run.overwrite; the checkpoints still verify afterwards; --run.resume never on a
#      run with checkpoints names no destructive option either.
# Usage: test_run_dir.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
work=$(mktemp -d)
trap 'pkill -KILL -f -- "--run.dir $work/" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
bad() { echo "FAIL: $*"; fail=1; }
lines_at_least() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
cmd=(mpirun --oversubscribe --bind-to none -np 2 "$reel" train --config "$root/configs/tiny.ini" --data.path "$work/world.h5"
     --data.eval_clips 8 --run.eval_every 0 --run.log_every 1000 --run.plot false --dist.threads 1 --checkpoint.every 20)
# train RUN [STEPS [options...]]: the same command every time (60 steps unless given).
train() { timeout 120 "${cmd[@]}" --run.dir "$work/$1" --run.steps "${2:-60}" "${@:3}"; }
# The pids of the reel ranks training into run directory $1.
ranks_of() {
  for p in $(pgrep -f -- "--run.dir $work/$1( |$)"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = reel ] && echo "$p"
  done
}
# same_as_ref RUN: every step 1..60 once, each line valid JSON, losses equal to the reference's.
same_as_ref() {
  python3 - "$work/ref/metrics.jsonl" "$work/$1/metrics.jsonl" <<'PY'
import json, sys
ref, run = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
steps = [r["step"] for r in run]
assert steps == list(range(1, 61)), f"steps {steps}"
diff = [(a["step"], a["loss"], b["loss"]) for a, b in zip(ref, run) if a["loss"] != b["loss"]]
assert not diff, f"losses differ from the uninterrupted run: {diff[:3]}"
PY
}

train ref > "$work/ref.log" 2>&1 || { tail -5 "$work/ref.log"; bad "the uninterrupted run failed"; }

# 1. kill -9 of one rank before, during and after the first checkpoint (step 20).
# kill_at RUN LINES [CHECKPOINT]: kills the last rank once metrics.jsonl has LINES lines
# (and CHECKPOINT exists, when given).
kill_at() {
  train "$1" > "$work/$1.log" 2>&1 &
  local job=$! ok=0
  for _ in $(seq 240); do
    if lines_at_least "$work/$1/metrics.jsonl" "$2" && { [ -z "${3:-}" ] || [ -e "$work/$1/checkpoints/$3" ]; }; then
      ok=1
      break
    fi
    sleep 0.25
  done
  [ $ok -eq 1 ] || bad "$1: the run never reached the point to kill it"
  kill -KILL $(ranks_of "$1" | tail -n 1) 2>/dev/null || bad "$1: no rank to kill"
  wait $job
}
kill_at before 3
[ -e "$work/before/checkpoints/step_00000020" ] && bad "before: killed too late (a checkpoint exists)"
REEL_FAULT_INJECT=kill_in_save:1:20 train during > "$work/during.log" 2>&1 && bad "during: a killed job reported success"
ls -a "$work/during/checkpoints" 2>/dev/null | grep -q "^\.tmp_step_00000020$" || bad "during: no partial checkpoint"
kill_at after 25 step_00000020
for t in before during after; do
  train "$t" > "$work/$t-resume.log" 2>&1 || { tail -5 "$work/$t-resume.log"; bad "$t: the resumed run failed"; }
  same_as_ref "$t" || bad "$t: the resumed run is not the uninterrupted one"
done
grep -q "holds no complete checkpoint .*starting the run afresh" "$work/before-resume.log" || bad "before: no fresh-start message"
grep -q "holds no complete checkpoint .*starting the run afresh" "$work/during-resume.log" || bad "during: no fresh-start message"
grep -q "resumed from .*step_00000020 at step 20" "$work/after-resume.log" || bad "after: did not resume from step 20"

# 2. The issue's repro: metrics.jsonl and no checkpoint.
mkdir -p "$work/repro" && touch "$work/repro/metrics.jsonl"
train repro > "$work/repro.log" 2>&1 || { tail -3 "$work/repro.log"; bad "repro: exit $? (a crash before the first checkpoint must not be permanent)"; }
grep -q "starting the run afresh" "$work/repro.log" || bad "repro: the log does not say it starts afresh"

# 3. Two runs into one directory: the second is refused at once, the first is untouched.
train shared 200 > "$work/first.log" 2>&1 &
first=$!
for _ in $(seq 240); do lines_at_least "$work/shared/metrics.jsonl" 2 && break; sleep 0.25; done
start=$SECONDS
train shared 200 > "$work/second.log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || bad "second run: exit $rc (0: it ran; 124: it hung)"
grep -Eq "run.dir .*/shared is in use by another reel train \(host .*, pid [0-9]+, .*since" "$work/second.log" \
  || bad "second run: the refusal does not name the holder"
[ $((SECONDS - start)) -lt 60 ] || bad "second run: refused only after $((SECONDS - start)) s"
wait $first || { tail -5 "$work/first.log"; bad "first run: failed next to a refused second run"; }
python3 - "$work/shared/metrics.jsonl" <<'PY' || bad "first run: its metrics are not steps 1..200 once each"
import json, sys
assert [json.loads(l)["step"] for l in open(sys.argv[1])] == list(range(1, 201))
PY
grep -q "resumed from" "$work/first.log" && bad "first run: it resumed (from the second?)"
# The lock goes with its process: the same directory is free again at once.
train shared 210 > "$work/third.log" 2>&1 || bad "after the first run ended, the directory is still locked"

# 4. A torn last line in metrics.jsonl (an older version killed mid-write) is dropped on resume.
printf '{"step": 61, "loss": 0.1' >> "$work/after/metrics.jsonl"
train after 64 > "$work/torn.log" 2>&1 || bad "torn: the resume failed"
grep -q "metrics.jsonl: dropped 1 line(s) that were not whole JSON" "$work/torn.log" || bad "torn: no repair message"
python3 - "$work/after/metrics.jsonl" <<'PY' || bad "torn: metrics are not steps 1..64, each a whole JSON line"
import json, sys
assert [json.loads(l)["step"] for l in open(sys.argv[1])] == list(range(1, 65))
PY

# 5. Safe advice. A changed model option: the real reason last, nothing destructive advised.
train after 70 --model.depth 1 > "$work/changed.log" 2>&1 && bad "changed: a changed model resumed"
last=$(grep "reel: error" "$work/changed.log" | tail -n 1)
grep -Eq "model.depth is 4 in the checkpoint, 1 in this configuration( \(rank [0-9]+\))?$" <<< "$last" \
  || bad "changed: the last error does not end with the changed field: $last"
grep -qi "overwrite" "$work/changed.log" && bad "changed: the advice names --run.overwrite (it would delete good checkpoints)"
"$reel" ckpt verify "$work/after/checkpoints/step_00000064" > /dev/null 2>&1 || bad "changed: the checkpoint no longer verifies"
train after 70 --run.resume never > "$work/never.log" 2>&1 && bad "never: a run directory with a run was reused"
grep -q "resume it with --run.resume auto, or choose another run.dir" "$work/never.log" || bad "never: no advice"
grep -qi "overwrite" "$work/never.log" && bad "never: the advice names --run.overwrite next to complete checkpoints"

if [ $fail -ne 0 ]; then
  for f in "$work"/*.log; do echo "== $f"; grep -v "\] \[info\]" "$f" | tail -n 6; done
  exit 1
fi
echo "run directory: kills before, during and after the first checkpoint resume; one run per directory; whole metrics lines; safe advice: ok"
