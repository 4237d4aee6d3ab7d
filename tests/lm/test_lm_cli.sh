#!/usr/bin/env bash
# The language model through `reel train`, as a user runs it: `reel data --kind text`
# writes a corpus; 2 ranks with ring sequence parallelism train 6 steps and checkpoint;
# 4 ranks (HSDP, Ulysses sp 2) resume that checkpoint, resharded, to step 12; the losses
# of steps 7-12 equal those of an uninterrupted 2-rank run within 1e-4 (resharding
# reorders floating-point sums, nothing more). A missing corpus names the command that
# writes one; the loss falls; `reel sample` refuses a language model's weights by name.
# Usage: test_lm_cli.sh path/to/reel path/to/python
source "$(dirname "$0")/../support/cli_test.sh"
reel=$1 python=$2
common=(--model.family lm --model.dim 64 --model.depth 2 --data.path "$dir/text.h5" --data.global_batch 8
        --data.eval_clips 8 --run.eval_every 6 --run.log_every 6 --run.plot false --optim.warmup 2 --optim.lr 3e-3
        --optim.decay constant
        --run.peak_flops 1e11)

# A missing corpus: a usage error that gives the command writing one of the model's shape.
if "$reel" train "${common[@]}" --run.dir "$dir/none" > "$dir/missing.log" 2>&1; then fail "trained without data"; fi
grep -q "reel data --kind text --out $dir/text.h5 --samples .* --seq-len 128" "$dir/missing.log" \
  || fail "no hint for the missing corpus: $(cat "$dir/missing.log")"

"$reel" data --kind text --out "$dir/text.h5" --samples 200 --seed 4 | grep -q "wrote a text corpus of 200 samples" \
  || fail "reel data --kind text"
"$reel" data --inspect "$dir/text.h5" | grep -q "verified against its checksum" || fail "reel data --inspect of a corpus"

mpirun --oversubscribe --bind-to none -np 2 "$reel" train "${common[@]}" --run.dir "$dir/straight" --run.steps 12 \
  --parallel.sp 2 --parallel.sp_mode ring > "$dir/straight.log" 2>&1 || { cat "$dir/straight.log"; fail "straight run"; }
# The same run in two parts (a constant learning rate: the first part's length changes no
# step's rate), the second on 4 ranks in another layout.
mpirun --oversubscribe --bind-to none -np 2 "$reel" train "${common[@]}" --run.dir "$dir/split" --run.steps 6 \
  --parallel.sp 2 --parallel.sp_mode ring > "$dir/first.log" 2>&1 || { cat "$dir/first.log"; fail "first part"; }
mpirun --oversubscribe --bind-to none -np 4 "$reel" train "${common[@]}" --run.dir "$dir/split" --run.steps 12 \
  --parallel.sp 2 --parallel.shard_group 2 > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "resumed run"; }
grep -q "resumed from $dir/split/checkpoints/step_00000006 at step 6" "$dir/resumed.log" \
  || fail "did not resume at step 6: $(cat "$dir/resumed.log")"

"$python" - "$dir/straight/metrics.jsonl" "$dir/split/metrics.jsonl" <<'PY'
import json, sys
def losses(path):
    return {l["step"]: l for l in map(json.loads, open(path))}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(a) == list(range(1, 13)) and sorted(b) == list(range(1, 13)), (sorted(a), sorted(b))
for step in range(7, 13):
    x, y = a[step]["loss"], b[step]["loss"]
    assert abs(x - y) <= 1e-4 * abs(x), f"step {step}: {x} straight, {y} resumed at 4 ranks"
assert a[12]["loss"] < a[1]["loss"] - 0.3, f"the loss must fall: {a[1]['loss']} -> {a[12]['loss']}"
assert "eval_loss" in a[12] and "rollout_mse" not in a[12], "a language model's evaluation is its held-out loss"
PY
if "$reel" sample --weights "$dir/straight/model.h5" --data "$dir/text.h5" --out "$dir/s" > "$dir/sample.log" 2>&1; then
  fail "reel sample rolled out a language model"
fi
grep -q "a model of model.family lm; reel sample rolls out world models" "$dir/sample.log" || fail "sample: $(cat "$dir/sample.log")"
echo "language model through reel train: ok"
