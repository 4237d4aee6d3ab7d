#!/usr/bin/env bash
# reel against PyTorch on the same model and step (the tiny preset, CPU), prints markdown:
#  1. 1 rank, 2 threads: reel train vs bench/torch_eager.py (eager, the same ops);
#  2. 2 ranks x 1 thread: reel's FSDP vs PyTorch FSDP2 (fully_shard over gloo,
#     bench/torch_fsdp2.py), both resharding after forward, global batch 16.
# The two sides alternate, PAIRS times each (default 3): each pair's ratio is measured in
# one go on the same machine, and the spread of the pairs is the noise.
# Usage: bench/vs_torch.sh [PAIRS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
python=${REEL_PYTHON:-$root/.venv/bin/python}
pairs=${1:-3}
bash "$root/scripts/build.sh" --target reel > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/launch/reel" data --out "$work/world.h5" --clips 200 --seed 7 > /dev/null

# reel_step RANKS THREADS ARGS...: median step_time_s (ms) after the first 10 of 40 steps
reel_step() {
  local ranks=$1 threads=$2; shift 2
  rm -rf "$work/run"
  mpirun --oversubscribe --bind-to none -np "$ranks" "$build/launch/reel" train --config "$root/configs/tiny.ini" \
    --data.path "$work/world.h5" --data.eval_clips 0 --run.eval_every 0 --run.steps 40 --run.plot false \
    --run.log_every 1000 --run.dir "$work/run" --dist.threads "$threads" --data.global_batch 16 "$@" \
    > "$work/reel.log" 2>&1 || { cat "$work/reel.log"; exit 1; }
  "$python" -c "
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][10:]
print(1e3 * statistics.median(r['step_time_s'] for r in rows))" "$work/run/metrics.jsonl"
}
torch_step() {  # SCRIPT ARGS...: median_step_ms from the script's JSON
  "$python" "$@" --json | "$python" -c "import json, sys; print(json.loads(sys.stdin.read().splitlines()[-1])['median_step_ms'])"
}
# table TITLE THEIRS-NAME: reads pairs "reel theirs" from $work/pairs
table() {
  "$python" - "$work/pairs" "$1" "$2" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
ratios = [t / r for r, t in pairs]
print(f"**{sys.argv[2]}**: reel / {sys.argv[3]} throughput **{statistics.median(ratios):.2f}x** "
      f"(median of {len(pairs)} alternating pairs; range {min(ratios):.2f}-{max(ratios):.2f})\n")
print(f"| pair | reel step (ms) | {sys.argv[3]} step (ms) | reel / {sys.argv[3]} |")
print("|---:|---:|---:|---:|")
for i, ((r, t), q) in enumerate(zip(pairs, ratios), 1):
    print(f"| {i} | {r:.1f} | {t:.1f} | {q:.2f} |")
print()
PY
}

echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; torch $("$python" -c 'import torch; print(torch.__version__)'); tiny preset (1.30 M parameters), global batch 16; $(date -u +%F)."
echo
: > "$work/pairs"
for i in $(seq "$pairs"); do
  r=$(reel_step 1 2)
  t=$(torch_step "$root/bench/torch_eager.py" --threads 2 --steps 30 --warmup 5 --batch 16)
  echo "$r $t" >> "$work/pairs"
done
table "1 rank, 2 threads, PyTorch eager" "eager"
: > "$work/pairs"
for i in $(seq "$pairs"); do
  r=$(reel_step 2 1 --parallel.reshard_after_forward true)
  t=$(torch_step "$root/bench/torch_fsdp2.py" --ranks 2 --threads 1 --steps 30 --warmup 5 --batch 16)
  echo "$r $t" >> "$work/pairs"
done
table "2 ranks x 1 thread, PyTorch FSDP2 (fully_shard, gloo)" "FSDP2"
