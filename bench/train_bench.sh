#!/usr/bin/env bash
# Training benchmarks (CPU ranks, FSDP), from reel train's metrics.jsonl; prints markdown.
#  1. tokens/s: 1 rank x 2 threads vs 2 ranks x 1 thread, same global batch;
#  2. step time with and without all-gather prefetch, and the exposed-communication share;
#  3. peak memory (resident, rank 0) with and without activation checkpointing, two depths;
#  4. per-rank memory at 1, 2 and 4 ranks: persistent FSDP state and resident peak.
# Each figure is the median over steps 11..N of one run (the first steps warm up).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
steps=${REEL_BENCH_STEPS:-40}
bash "$root/scripts/build.sh" --target reel > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/launch/reel" data --out "$work/world.h5" --clips 600 --seed 7 > /dev/null

# run NAME RANKS THREADS ARGS...: trains (n_steps steps, default $steps), leaves
# $work/NAME/metrics.jsonl
run() {
  local name=$1 ranks=$2 threads=$3; shift 3
  local n=${n_steps:-$steps}
  mpirun --oversubscribe --bind-to none -np "$ranks" "$build/launch/reel" train --config "$root/configs/tiny.ini" \
    --data.path "$work/world.h5" --data.eval_clips 0 --run.eval_every 0 --run.steps "$n" \
    --run.log_every 1000 --run.dir "$work/$name" --dist.threads "$threads" "$@" > "$work/$name.log" 2>&1 \
    || { cat "$work/$name.log"; exit 1; }
}
# med NAME KEY: median of KEY over steps after the tenth
med() {
  python3 - "$work/$1/metrics.jsonl" "$2" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])][10:]
print(statistics.median(r[sys.argv[2]] for r in rows))
PY
}
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }
mib() { python3 -c "print(f'{$1 / 2**20:.1f}')"; }

echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores; tiny preset, global batch 16, $steps steps, $(date -u +%F)."
echo
run r1t2 1 2
run r2t1 2 1
a=$(med r1t2 tokens_per_s); b=$(med r2t1 tokens_per_s)
echo "### Tokens/s, same global batch"
echo
echo "| layout | tokens/s | ratio to 1 x 2 |"
echo "|---|---:|---:|"
echo "| 1 rank x 2 threads | ${a%.*} | 1.000 |"
echo "| 2 ranks x 1 thread (FSDP) | ${b%.*} | $(ratio "$b" "$a") |"
echo
run pf 2 1 --parallel.prefetch true
run nopf 2 1 --parallel.prefetch false
echo "### Prefetch (2 ranks x 1 thread)"
echo
echo "| prefetch | step time (ms) | exposed communication (ms) | share of step |"
echo "|---|---:|---:|---:|"
for n in pf nopf; do
  s=$(med $n step_time_s); c=$(med $n comm_exposed_s)
  echo "| $([ $n = pf ] && echo on || echo off) | $(python3 -c "print(f'{$s*1e3:.1f}')") | $(python3 -c "print(f'{$c*1e3:.1f}')") | $(ratio "$c" "$s") |"
done
echo
echo "### Peak resident memory of rank 0 with and without activation checkpointing (2 ranks, batch 64, dim 256)"
echo
echo "| depth | checkpoint | peak RSS (MiB) |"
echo "|---:|---|---:|"
for depth in 4 8; do
  for ac in none full; do
    n_steps=14 run "ac_${depth}_${ac}" 2 1 --model.depth "$depth" --model.dim 256 --data.global_batch 64 --parallel.activation_checkpoint "$ac"
    echo "| $depth | $ac | $(mib "$(med "ac_${depth}_${ac}" rss_peak_bytes)") |"
  done
done
echo
echo "### Per-rank memory (depth 8, dim 256)"
echo
echo "| ranks | persistent FSDP state (MiB) | peak RSS (MiB) |"
echo "|---:|---:|---:|"
for ranks in 1 2 4; do
  n_steps=14 run "mem_$ranks" "$ranks" 1 --model.depth 8 --model.dim 256
  echo "| $ranks | $(mib "$(med "mem_$ranks" persistent_bytes)") | $(mib "$(med "mem_$ranks" rss_peak_bytes)") |"
done
