#!/usr/bin/env bash
# run.keep_best: the best held-out weights in model_best.h5, and the held-out trend said
# at the end of the run. 1 rank, a small model, 16 clips (4 held out):
#  - 12 steps at lr 3e-3 with an evaluation every 4, then resumed from step 12 to 24 at
#    lr 0.1, which drives the held-out loss up: the best evaluation is one before the
#    resume, so a best not carried over the resume would be replaced at step 16;
#  - model_best.h5's step is the step of the lowest eval_loss in metrics.jsonl, its
#    eval_loss that evaluation's, its weights those of that step's checkpoint (reel ckpt
#    export) and not model.h5's; the log's last words on the held-out loss say both;
#  - without the option: no model_best.h5, the best before a resume read back from
#    metrics.jsonl, the log says model.h5 holds the last step's weights;
#  - a fresh start (--run.overwrite) removes a model_best.h5 an earlier run left.
# Usage: test_keep_best.sh path/to/reel path/to/python (with h5py)
set -uo pipefail
reel=$1 python=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$reel" data --out "$work/world.h5" --clips 16 --seed 4 > /dev/null || fail "reel data"
train=("$reel" train --data.path "$work/world.h5" --data.eval_clips 4 --data.global_batch 4 --run.eval_every 4
       --checkpoint.every 4 --checkpoint.keep 0 --run.log_every 1000 --run.rollout_steps 0 --run.plot false
       --model.dim 64 --model.depth 2 --run.peak_flops 1e11 --dist.threads 2 --optim.warmup 2
       --optim.decay constant)
# run DIR LOG ARGS...: trains, or fails the test with the log's tail.
run() {
  local dir=$1 log=$2
  shift 2
  "${train[@]}" --run.dir "$work/$dir" "$@" > "$work/$log" 2>&1 || { tail -n 20 "$work/$log"; fail "$log: reel train failed"; }
}
run best best1.log --run.keep_best true --run.steps 12 --optim.lr 3e-3
run best best2.log --run.keep_best true --run.steps 24 --optim.lr 0.1
grep -q "resumed from .*step_00000012 at step 12" "$work/best2.log" || fail "the second run did not resume from step 12"
grep -q "held-out loss: the best before the resume is .* at step [0-9]* (model_best.h5)" "$work/best2.log" ||
  fail "the resumed run did not read the best back from model_best.h5"
for step in 4 8 12 16 20 24; do
  "$reel" ckpt export "$work/best/checkpoints/step_$(printf %08d $step)" --out "$work/step$step.h5" > /dev/null ||
    fail "reel ckpt export of step $step"
done
run plain plain1.log --run.keep_best false --run.steps 12 --optim.lr 3e-3
run plain plain2.log --run.keep_best false --run.steps 24 --optim.lr 0.1
[ -e "$work/plain/model_best.h5" ] && fail "run.keep_best false wrote model_best.h5"
"$python" - "$work" <<'PY' || exit 1
import json, re, sys
import h5py, numpy as np
work = sys.argv[1]
def fail(why):
    print("FAIL:", why)
    sys.exit(1)
def evals(run):
    lines = [json.loads(l) for l in open(f"{work}/{run}/metrics.jsonl")]
    return {l["step"]: l["eval_loss"] for l in lines if "eval_loss" in l}
def trend(log):
    found = [l for l in open(f"{work}/{log}") if "held-out loss: best" in l]
    return found[-1] if found else fail(f"{log}: no held-out trend at the end")
ev = evals("best")
if sorted(ev) != [4, 8, 12, 16, 20, 24]:
    fail(f"evaluations at steps {sorted(ev)}")
best = min(ev, key=ev.get)
if best > 12:
    fail(f"the lowest held-out loss is after the resume at step 12 ({ev}): the test needs it before, "
         "so that the best must survive the resume")
with h5py.File(f"{work}/best/model_best.h5") as f:
    step, loss = int(f.attrs["step"]), float(f.attrs["eval_loss"])
    kept = {k: f["params"][k][()] for k in f["params"]}
if step != best or loss != ev[best]:
    fail(f"model_best.h5 says step {step} eval_loss {loss}; metrics.jsonl's lowest is step {best} ({ev[best]})")
# The weights evaluated at step `best` are that step's checkpoint (saved before the evaluation).
with h5py.File(f"{work}/step{best}.h5") as f:
    exported = {k: f["params"][k][()] for k in f["params"]}
with h5py.File(f"{work}/best/model.h5") as f:
    final = {k: f["params"][k][()] for k in f["params"]}
if sorted(kept) != sorted(exported):
    fail("model_best.h5 and the checkpoint export name different parameters")
for k in kept:
    if not np.array_equal(kept[k], exported[k]):
        fail(f"model_best.h5's {k} differs from step {best}'s checkpoint")
if all(np.array_equal(kept[k], final[k]) for k in kept):
    fail("model_best.h5 holds the final weights")
line = trend("best2.log")
want = (f"held-out loss: best {ev[best]:.4f} at step {best}; last {ev[24]:.4f} at step 24 "
        f"(+{100 * (ev[24] - ev[best]) / ev[best]:.1f}% since the best")
if want not in line or f"model_best.h5 holds step {best}'s weights" not in line:
    fail(f"the trend line says\n  {line.strip()}\nexpected it to contain\n  {want} ... model_best.h5 holds step {best}'s weights")
plain = evals("plain")
pbest = min(plain, key=plain.get)
line = trend("plain2.log")
if f"best {plain[pbest]:.4f} at step {pbest}" not in line or "model.h5 holds step 24's weights" not in line:
    fail(f"without run.keep_best the trend line says\n  {line.strip()}")
print(f"held-out: best {ev[best]:.4f} at step {best}, last {ev[24]:.4f} at step 24")
PY
# A fresh start in the same directory removes the earlier run's best weights.
run best fresh.log --run.resume never --run.overwrite true --run.keep_best false --run.steps 4
[ -e "$work/best/model_best.h5" ] && fail "a fresh start kept the earlier run's model_best.h5"
echo "best held-out weights: model_best.h5 holds the lowest evaluation's weights across a resume, the trend is said: ok"
