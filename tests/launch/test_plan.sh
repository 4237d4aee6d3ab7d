#!/usr/bin/env bash
# `reel plan` at scale: the 1b, 7b and long presets on 1,024 H100s answer in seconds with
# layouts that fit, fastest first; --json is valid and complete; H200's larger memory
# fits at least what H100's does.
# Usage: test_plan.sh path/to/reel path/to/python
set -euo pipefail
reel=$1 python=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for preset in 1b 7b long; do
  start=$(date +%s.%N)
  "$reel" plan --model.preset $preset --cluster h100 --gpus 1024 --data.global_batch 1024 --data.eval_clips 1024 > "$dir/$preset.txt"
  "$reel" plan --model.preset $preset --cluster h100 --gpus 1024 --data.global_batch 1024 --data.eval_clips 1024 --json > "$dir/$preset.json"
  "$reel" plan --model.preset $preset --cluster h200 --gpus 1024 --data.global_batch 1024 --data.eval_clips 1024 --json > "$dir/$preset.h200.json"
  elapsed=$("$python" -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$start")
  "$python" - "$dir/$preset.json" "$dir/$preset.h200.json" "$elapsed" "$preset" <<'PY'
import json, sys
h100, h200 = (json.load(open(p)) for p in sys.argv[1:3])
elapsed, preset = float(sys.argv[3]), sys.argv[4]
assert elapsed < 30, f"{preset}: three plans took {elapsed:.1f} s"
fit = [l for l in h100["layouts"] if l["fits"]]
assert fit, f"{preset}: no layout fits 1,024 H100s"
steps = [l["time_s"]["step"] for l in fit]
assert steps == sorted(steps), f"{preset}: fitting layouts not fastest first"
for l in fit:
    m = l["memory_bytes"]
    assert m["total"] <= h100["cluster"]["memory_bytes"], f"{preset}: {l['layout']} fits with {m['total']} bytes"
    assert l["dp"] * l["sp"] == 1024 and 0 < l["mfu"] < 1 and l["tokens_per_s"] > 0, l
    assert l["comm_bytes"]["shard.all_gather"] > 0, l
for l in h100["layouts"]:
    assert l["fits"] or l["reason"], f"{preset}: {l['layout']} rejected without a reason"
key = lambda l: (l["dp"], l["sp"], l["sp_mode"], l["ulysses"], l["shard_group"], l["activation_checkpoint"])
fit200 = {key(l): l["micro_batches"] for l in h200["layouts"] if l["fits"]}
for l in fit:  # more memory: the same layout fits, with no more micro-batches
    assert key(l) in fit200 and fit200[key(l)] <= l["micro_batches"], f"{preset}: {l['layout']} fits an H100 better"
print(f"{preset}: {len(fit)} of {len(h100['layouts'])} layouts fit 1,024 H100s ({len(fit200)} on H200s), "
      f"best {fit[0]['layout']} at {fit[0]['mfu']:.1%} MFU")
PY
  grep -q "layouts fit; the fastest 10:" "$dir/$preset.txt" || { echo "FAIL: $preset text output"; cat "$dir/$preset.txt"; exit 1; }
done
echo "reel plan answers for 1b, 7b and long on 1,024 GPUs: ok"
