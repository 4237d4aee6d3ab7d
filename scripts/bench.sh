#!/usr/bin/env bash
# Every benchmark, one report: writes docs/benchmarks.md (or the file given) with the
# machine, the date and the commit, one section per benchmark. Each figure is a ratio
# measured within one run of this script; the sections say how noise was handled.
#   scripts/bench.sh [REPORT.md]      (about 20-30 minutes on a 2-core machine)
# Sections: reel vs PyTorch (eager at 1 rank, FSDP2 at 2 ranks); collectives vs raw MPI;
# FSDP scaling, prefetch and overlap, activation-checkpoint memory; the longest context
# per sequence-parallel scheme; async checkpoint overhead; reel plan against measured
# runs. A benchmark that fails is reported in its section and the script exits 1.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
report=${1:-$root/docs/benchmarks.md}
python=${REEL_PYTHON:-$root/.venv/bin/python}
bash "$root/scripts/build.sh" > /dev/null || { echo "bench.sh: the build failed" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
failed=0
# section TITLE INTRO COMMAND...: runs the command, appends its markdown (or its failure)
section() {
  local title=$1 intro=$2; shift 2
  local start=$SECONDS
  echo "bench.sh: $title ..." >&2
  { echo "## $title"; echo; echo "$intro"; echo; } >> "$tmp"
  "$@" >> "$tmp" 2> "$tmp.err"
  local rc=$?
  if [ "$rc" -eq 0 ]; then
    echo >> "$tmp"
    echo "_($((SECONDS - start)) s)_" >> "$tmp"
  else
    failed=1
    { echo; echo "**FAILED** (exit $rc):"; echo '```'; tail -20 "$tmp.err"; echo '```'; } >> "$tmp"
  fi
  echo >> "$tmp"
  rm -f "$tmp.err"
}

section "reel against PyTorch on the same model and step" \
  "bench/vs_torch.sh: reel train against bench/torch_eager.py (1 rank, 2 threads) and bench/torch_fsdp2.py (fully_shard over gloo, 2 ranks x 1 thread), PyTorch with fused AdamW and foreach clipping; 5 alternating pairs each; on both sides a step is the slowest rank's, 10 warm-up steps, the median of the next 30." \
  bash "$root/bench/vs_torch.sh" 5
section "Collectives: reel's Communicator against raw MPI" \
  "scripts/bench_comm.sh (program bench/comm_bench.cpp): each collective through reel's Communicator (MPI backend, blocking form) and through the raw MPI call on the same buffers and a duplicate of the same communicator, 1 KiB to 64 MiB of float32. Each point is the median of 5 rounds alternating raw and reel; a round is the slowest rank's mean over enough calls to take about 0.2 s. Size is the call's largest buffer; bus bandwidth uses nccl-tests' factors (all-reduce 2(n-1)/n; all-gather, reduce-scatter, all-to-all (n-1)/n; broadcast 1). Target: reel / raw >= 0.95 from 1 MiB up. Both paths run the same MPI call; reel adds argument checks and a lock, a fixed cost per call that shows below 1 MiB. Single points scatter by about 10% either way on a 2-core VM (4 ranks are oversubscribed), so the geometric mean over the sizes is the figure to read." \
  bash "$root/scripts/bench_comm.sh" --max-mib 64
section "FSDP: scaling at 2 cores, prefetch and overlap, activation-checkpoint memory" \
  "bench/train_bench.sh: reel train on the tiny preset; medians over steps 11-40 of one run each. Resident memory includes LibTorch's libraries and allocator caches, so it falls slower than 1/N; the persistent FSDP state falls as 1/N. Prefetch is off by default on CPU ranks (parallel.prefetch auto), since ranks that fill every core leave no idle core to overlap into: the pair below forces it on and off." \
  bash "$root/bench/train_bench.sh"
section "FSDP: asynchronous gradient reduction against the blocking one" \
  "bench/async_reduce.sh: 2 ranks x 1 thread, dim 256, depth 4, global batch 32; 4 alternating pairs, medians over steps 11-40 of each run. On CPU ranks each reduce-scatter runs on the MPI communicator's queue thread: async reduction lowers the exposed communication, while two cores leave no idle one to overlap into, which is why parallel.async_reduce auto keeps it off on CPU ranks." \
  bash "$root/bench/async_reduce.sh" 4
section "FSDP: sharded gradient accumulation against unsharded" \
  "bench/grad_accumulation.sh: 2 ranks x 1 thread, dim 512, depth 4, global batch 32 in 4 micro-batches; 3 alternating pairs, medians over steps 11-30 of each run; peak RSS above start, rank 0. Sharded accumulation (the default) reduce-scatters every micro-batch (4x the bytes) and, with async_reduce off on CPU ranks, all of it is exposed; what it saves is memory, which grows with the model (docs/training.md); --parallel.grad_accumulation unsharded keeps the old behaviour." \
  bash "$root/bench/grad_accumulation.sh" 3
section "Sequence parallelism: the longest context per scheme" \
  "bench/sp_bench.sh: 4 ranks, a 128 MiB activation budget per rank; attention bytes against the analytic volume." \
  bash "$root/bench/sp_bench.sh"
section "Async checkpoints: what a save costs the training step" \
  "bench/ckpt_bench.sh: 38 M parameters on 2 ranks, a save every 12 steps." \
  bash "$root/bench/ckpt_bench.sh"
section "reel plan against measured runs" \
  "scripts/plan_validate.py --steps 20: each layout trained 20 steps here and planned with reel plan --given --cluster cpu (docs/plan.md explains the model and the bounds)." \
  "$python" "$root/scripts/plan_validate.py" "$root/build/launch/reel" --steps 20 --table -

{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh\` on $(date -u +%F) at commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with uncommitted changes)')."
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"); no GPU."
  echo "Every figure below comes from this one run. The machine is a shared 2-core VM: run-to-run noise"
  echo "of ±10% in step times is common, so each comparison alternates its two sides or runs them back to back."
  echo "Earlier dedicated findings (A/B pairs and a profile behind defaults), each with its date: docs/bench-train.md."
  echo
  cat "$tmp"
} > "$report"
echo "bench.sh: wrote $report" >&2
exit $failed
