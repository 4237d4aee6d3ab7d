#!/usr/bin/env bash
# `reel train` end to end on 2 CPU ranks: generated data, a few steps with activation
# checkpointing and gradient accumulation; metrics.jsonl valid JSON with every key on
# every step; evaluations; the resolved config.ini, which `reel train` reads back as a
# lone positional argument; weights that `reel sample` turns into PNG grids.
# Usage: test_train.sh path/to/reel path/to/python
set -euo pipefail
reel=$1 python=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$dir/world.h5" --clips 40 --seed 1 > /dev/null
mpirun --oversubscribe --bind-to none -np 2 "$reel" train --data.path "$dir/world.h5" --run.dir "$dir/run" \
  --run.steps 6 --data.global_batch 8 --data.micro_batches 2 --data.eval_clips 4 --run.eval_every 3 \
  --parallel.activation_checkpoint full --run.log_every 2 --run.peak_flops 1e11
"$python" - "$dir/run/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]  # every line must be valid JSON
assert len(lines) == 6, f"{len(lines)} metrics lines, expected 6"
keys = ("step loss lr grad_norm tokens_per_s mfu hfu step_time_s compute_s comm_exposed_s data_wait_s "
        "rss_bytes rss_peak_bytes rss_start_bytes persistent_bytes device_peak_bytes comm_bytes").split()
for l in lines:
    missing = [k for k in keys if k not in l]
    assert not missing, f"step {l.get('step')}: missing {missing}"
    assert l["hfu"] > l["mfu"] > 0, f"full activation checkpointing: HFU {l['hfu']} must exceed MFU {l['mfu']}"
assert [l["step"] for l in lines] == list(range(1, 7))
evals = [l for l in lines if "eval_loss" in l]
assert len(evals) == 2, "expected 2 evaluations"
for l in evals:  # the world-model metrics at every evaluation
    for k in ("rollout_mse rollout_mse_copy rollout_ratio rollout_ratio_groups agent_err_px agent_err_copy_px "
              "agent_err_ratio agent_err_px_frames action_gain action_shift_px action_shift_physics_px").split():
        assert k in l, f"step {l['step']}: no {k}"
PY
# The run's curves: drawn at the end, and again on demand.
[ -s "$dir/run/curves.png" ] || { echo "FAIL: no curves.png at the end of the run"; exit 1; }
"$reel" plot "$dir/run" --out "$dir/again.png" | grep -q "wrote $dir/again.png" || { echo "FAIL: reel plot"; exit 1; }
"$python" -c "import sys; sys.exit(open(sys.argv[1], 'rb').read(8) != b'\\x89PNG\\r\\n\\x1a\\n')" "$dir/again.png" \
  || { echo "FAIL: reel plot wrote no PNG"; exit 1; }
if "$reel" plot "$dir/none" > "$dir/plot.err" 2>&1; then echo "FAIL: reel plot of no run succeeded"; exit 1; fi
grep -q "metrics.jsonl: no such file" "$dir/plot.err" || { echo "FAIL: reel plot of no run: $(cat "$dir/plot.err")"; exit 1; }
grep -q "activation_checkpoint = full" "$dir/run/config.ini" || { echo "FAIL: config.ini lacks the setting"; exit 1; }
# The written configuration is a complete one: it trains again as given.
mpirun --oversubscribe --bind-to none -np 2 "$reel" train "$dir/run/config.ini" --run.dir "$dir/again" --run.steps 1 \
  --run.eval_every 0 > /dev/null 2>&1 || { echo "FAIL: config.ini does not train again"; exit 1; }
"$reel" sample --weights "$dir/run/model.h5" --data "$dir/world.h5" --count 1 --out "$dir/samples" > "$dir/sample.txt"
[ -s "$dir/samples/sample_39.png" ] || { echo "FAIL: no picture"; exit 1; }
grep -q "^agent position error" "$dir/sample.txt" || { echo "FAIL: reel sample printed no metrics"; exit 1; }
echo "reel train end to end: ok"
