#!/usr/bin/env bash
# Sharded gradient accumulation against unsharded (parallel.grad_accumulation), 2 ranks x
# 1 thread (FSDP), dim 512, depth 4, global batch 32 in 4 micro-batches: alternating
# pairs, each figure the median over steps 11..N of one run (peak RSS: the last step's
# high-water mark above the process's start, rank 0). Prints markdown.
#   bench/grad_accumulation.sh [PAIRS]   (default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
pairs=${1:-3}
steps=${REEL_BENCH_STEPS:-30}
bash "$root/scripts/build.sh" --target reel > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/launch/reel" data --out "$work/world.h5" --clips 200 --seed 7 > /dev/null
# run NAME MODE: one run; prints "step_ms exposed_ms peak_mib reduce_scatter_mb"
run() {
  mpirun --oversubscribe --bind-to none -np 2 "$build/launch/reel" train --config "$root/configs/tiny.ini" \
    --data.path "$work/world.h5" --data.eval_clips 0 --run.eval_every 0 --run.steps "$steps" --run.plot false \
    --run.log_every 1000 --run.dir "$work/$1" --dist.threads 1 --model.dim 512 --model.depth 4 \
    --data.global_batch 32 --data.micro_batches 4 --parallel.grad_accumulation "$2" > "$work/$1.log" 2>&1 \
    || { cat "$work/$1.log"; exit 1; }
  python3 - "$work/$1/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step_time_s"' in l]
last, tail = rows[-1], rows[10:]
print(f"{statistics.median(r['step_time_s'] for r in tail) * 1e3:.1f} "
      f"{statistics.median(r['comm_exposed_s'] for r in tail) * 1e3:.1f} "
      f"{(last['rss_peak_bytes'] - last['rss_start_bytes']) / 2**20:.0f} "
      f"{last['comm_bytes'].get('shard.reduce_scatter', 0) / 1e6:.1f}")
PY
}
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(getconf _NPROCESSORS_ONLN) cores; $(date -u +%F), commit $(git -C "$root" rev-parse --short HEAD)."
echo
echo "| pair | sharded step (ms) | exposed comm (ms) | peak RSS (MiB) | reduce-scatter MB/step | unsharded step (ms) | exposed comm (ms) | peak RSS (MiB) | reduce-scatter MB/step | step ratio sharded / unsharded |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
ratios=()
for p in $(seq "$pairs"); do
  read -r ss sc sm sb <<< "$(run "sharded$p" sharded)"
  read -r us uc um ub <<< "$(run "unsharded$p" unsharded)"
  r=$(python3 -c "print(f'{$ss / $us:.3f}')")
  ratios+=("$r")
  echo "| $p | $ss | $sc | $sm | $sb | $us | $uc | $um | $ub | $r |"
done
echo
echo "Median step ratio sharded / unsharded: $(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c "import statistics,sys; print(f'{statistics.median(float(l) for l in sys.stdin):.3f}')") over $pairs pairs."
