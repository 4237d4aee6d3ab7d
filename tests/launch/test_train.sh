#!/usr/bin/env bash
# `reel train` end to end on 2 CPU ranks: generated data, a few steps with activation
# checkpointing and gradient accumulation, metrics.jsonl with every required key on every
# step, an evaluation, weights that `reel sample` turns into PNG grids.
# Usage: test_train.sh path/to/reel
set -euo pipefail
reel=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$dir/world.h5" --clips 40 --seed 1 > /dev/null
mpirun --oversubscribe --bind-to none -np 2 "$reel" train --data.path "$dir/world.h5" --run.dir "$dir/run" \
  --run.steps 6 --data.global_batch 8 --data.micro_batches 2 --data.eval_clips 4 --run.eval_every 3 \
  --parallel.checkpoint full --run.log_every 2
lines=$(wc -l < "$dir/run/metrics.jsonl")
[ "$lines" -eq 6 ] || { echo "FAIL: $lines metrics lines, expected 6"; exit 1; }
for key in step loss lr grad_norm tokens_per_s mfu step_time_s compute_s comm_exposed_s data_wait_s rss_bytes \
           rss_peak_bytes persistent_bytes; do
  n=$(grep -c "\"$key\": " "$dir/run/metrics.jsonl")
  [ "$n" -eq 6 ] || { echo "FAIL: key $key on $n of 6 lines"; exit 1; }
done
[ "$(grep -c '"eval_loss": ' "$dir/run/metrics.jsonl")" -eq 2 ] || { echo "FAIL: expected 2 evaluations"; exit 1; }
"$reel" sample --weights "$dir/run/model.pt" --data "$dir/world.h5" --count 1 --out "$dir/samples"
[ -s "$dir/samples/sample_39.png" ] || { echo "FAIL: no picture"; exit 1; }
echo "reel train end to end: ok"
