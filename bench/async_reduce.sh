#!/usr/bin/env bash
# Asynchronous gradient reduction against the blocking one (parallel.async_reduce true vs
# false), 2 ranks x 1 thread (FSDP), dim 256, depth 4, global batch 32: alternating pairs,
# each figure the median over steps 11..N of one run. Prints markdown.
#   bench/async_reduce.sh [PAIRS]   (default 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
pairs=${1:-4}
steps=${REEL_BENCH_STEPS:-40}
bash "$root/scripts/build.sh" --target reel > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/launch/reel" data --out "$work/world.h5" --clips 200 --seed 7 > /dev/null
# run NAME ASYNC: one run; prints "step_ms exposed_ms"
run() {
  mpirun --oversubscribe --bind-to none -np 2 "$build/launch/reel" train --config "$root/configs/tiny.ini" \
    --data.path "$work/world.h5" --data.eval_clips 0 --run.eval_every 0 --run.steps "$steps" --run.plot false \
    --run.log_every 1000 --run.dir "$work/$1" --dist.threads 1 --model.dim 256 --model.depth 4 \
    --data.global_batch 32 --parallel.async_reduce "$2" > "$work/$1.log" 2>&1 || { cat "$work/$1.log"; exit 1; }
  python3 - "$work/$1/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][10:]
print(f"{statistics.median(r['step_time_s'] for r in rows) * 1e3:.1f} "
      f"{statistics.median(r['comm_exposed_s'] for r in rows) * 1e3:.1f}")
PY
}
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(getconf _NPROCESSORS_ONLN) cores; $(date -u +%F), commit $(git -C "$root" rev-parse --short HEAD)."
echo
echo "| pair | async step (ms) | async exposed comm (ms) | blocking step (ms) | blocking exposed comm (ms) | step ratio async / blocking |"
echo "|---:|---:|---:|---:|---:|---:|"
ratios=()
for p in $(seq "$pairs"); do
  read -r as ac <<< "$(run "async$p" true)"
  read -r bs bc <<< "$(run "block$p" false)"
  r=$(python3 -c "print(f'{$as / $bs:.3f}')")
  ratios+=("$r")
  echo "| $p | $as | $ac | $bs | $bc | $r |"
done
echo
echo "Median step ratio async / blocking: $(printf '%s\n' "${ratios[@]}" | sort -n | python3 -c "import statistics,sys; print(f'{statistics.median(float(l) for l in sys.stdin):.3f}')") over $pairs pairs."
