#!/usr/bin/env bash
# slurm/train.sbatch on two emulated nodes (scripts/cluster.sh):
#   1. preemption: `sbatch -N 2`, then `scancel --signal=USR1 --batch`: every rank finishes
#      its step and checkpoints, the script requeues the job, the next start resumes on 2
#      nodes; the 60 per-step losses are bitwise those of an uninterrupted 2-node run;
#   2. growing back: a run stopped with a checkpoint on 1 node (2 ranks, 2 micro-batches)
#      resumes on 2 nodes (4 ranks, 1 micro-batch: data.micro_batch keeps the global batch),
#      and its losses and gradient norms match the uninterrupted 2-node run within 1e-5 up
#      to 5 steps past the resume (later, training's own chaos amplifies the rounding of
#      two layouts: measured below).
# Usage: test_elastic.sh path/to/reel repository-root (77: skipped, with the reason)
set -uo pipefail
reel=$1 root=$2
cluster=(bash "$root/scripts/cluster.sh")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
multinode_can_run || exit 77
multinode_up elastic 2
job_pending() { "${cluster[@]}" exec ctl squeue -h -j "$1" -o %T 2> /dev/null | grep -q PENDING; }
ctl() { "${cluster[@]}" exec ctl "$@"; }
submit() { ctl env REEL="$reel" REEL_MAX_RESTARTS="$1" sbatch --parsable --chdir "$root" "${@:2}"; }

"$reel" data --out "$work/world.h5" --clips 40 --seed 6 > /dev/null || exit 1
common=(--config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.global_batch 8 --data.micro_batch 2
        --data.eval_clips 4 --run.eval_every 0 --run.steps 60 --run.log_every 1 --checkpoint.every 0
        --run.plot false --dist.threads 1)
timeout 300 "${cluster[@]}" exec ctl srun --mpi=pmix -N 2 -n 4 --ntasks-per-node 2 "$reel" train --run.dir "$work/ref" \
  "${common[@]}" > "$work/ref.log" 2>&1 || { tail "$work/ref.log"; bad "the uninterrupted 2-node run failed"; exit 1; }

# 1. Preemption on 2 nodes.
job=$(submit 3 -N 2 --ntasks-per-node 2 --output "$work/preempt.log" "$root/slurm/train.sbatch" "$work/run" "${common[@]}")
until_ok 90 lines_at_least "$work/run/metrics.jsonl" 5 || bad "the 2-node job did not start training"
ctl scancel --signal=USR1 --batch "$job"
until_ok 60 log_has "$work/preempt.log" "requeueing" || bad "no checkpoint-and-requeue after USR1"
until_ok 30 job_pending "$job" || bad "the job was not requeued"
sleep 3
ctl scontrol update jobid="$job" StartTime=now  # else Slurm holds a requeued job (the credential's lifetime)
until_ok 150 log_has "$work/preempt.log" "job $job: done" || { tail -n 20 "$work/preempt.log"; bad "the requeued job did not finish"; }
[ "$(grep -c "on 2 node(s) x 4 task(s)" "$work/preempt.log")" -eq 2 ] || bad "both starts should run on 2 nodes x 4 tasks"
log_has "$work/preempt.log" "resumed from .*step_" || bad "the second start did not resume"
"$root/.venv/bin/python" - "$work/ref/metrics.jsonl" "$work/run/metrics.jsonl" <<'PY' || bad "preemption: see above"
import json, sys
ref, run = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert [r["step"] for r in run] == list(range(1, 61)), [r["step"] for r in run]
diff = [(a["step"], a["loss"], b["loss"]) for a, b in zip(ref, run) if a["loss"] != b["loss"]]
assert not diff, f"losses differ from the uninterrupted 2-node run: {diff[:3]}"
print("preemption on 2 nodes: 60 per-step losses bitwise equal to the uninterrupted run")
PY

# 2. Growing back: stopped with a checkpoint on 1 node (not requeued: restart limit 0), resumed on 2.
job=$(submit 0 -N 1 --ntasks-per-node 2 --output "$work/small.log" "$root/slurm/train.sbatch" "$work/grow" "${common[@]}")
until_ok 90 lines_at_least "$work/grow/metrics.jsonl" 6 || bad "the 1-node job did not start training"
ctl scancel --signal=USR1 --batch "$job"
until_ok 60 log_has "$work/small.log" "not requeued" || { tail "$work/small.log"; bad "the 1-node job did not stop with a checkpoint"; }
log_has "$work/small.log" "global batch 8 x 2 micro" || bad "1 node: expected 2 micro-batches of 2 clips on 2 ranks"
job=$(submit 0 -N 2 --ntasks-per-node 2 --output "$work/big.log" "$root/slurm/train.sbatch" "$work/grow" "${common[@]}")
until_ok 150 log_has "$work/big.log" "job $job: done" || { tail -n 20 "$work/big.log"; bad "the 2-node resume did not finish"; }
log_has "$work/big.log" "resumed from .* (saved by 2 rank(s)" || bad "the 2-node job did not resume the 1-node checkpoint"
log_has "$work/big.log" "global batch 8 x 1 micro" || bad "2 nodes: expected 1 micro-batch of 2 clips on 4 ranks"
grep -o "resumed from .* at step [0-9]*" "$work/big.log" > "$work/resumed.txt"
"$root/.venv/bin/python" - "$work/ref/metrics.jsonl" "$work/grow/metrics.jsonl" "$work/resumed.txt" <<'PY' || bad "growing back: see above"
import json, sys
ref, run = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert [r["step"] for r in run] == list(range(1, 61)), [r["step"] for r in run]
# 2 ranks with 2 micro-batches and 4 ranks with 1 add the same numbers in another order:
# rounding apart, the curves agree (the same clips, noise and state), until training's own
# chaos amplifies it (measured: 1e-6 by step 40, 10% by step 52 with this model's loss
# spike). So: the steps on 1 node and the first 5 after the resume on 2, within 1e-5.
stop = int(open(sys.argv[3]).read().split("at step ")[1].split()[0])
for a, b in zip(ref, run):
    if a["step"] > stop + 5:
        break
    for key in ("loss", "grad_norm"):
        assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(a[key])), f"step {a['step']} {key}: {a[key]} vs {b[key]}"
print(f"growing back: steps 1-{stop} on 1 node, 60 in all; steps 1-{stop + 5} within 1e-5 of the uninterrupted 2-node run")
PY
[ $fail -eq 0 ] && echo "multinode elastic: ok"
exit $fail
