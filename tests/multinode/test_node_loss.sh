#!/usr/bin/env bash
# A node lost mid-run costs only the steps since the last checkpoint. On two emulated nodes
# (scripts/cluster.sh), `sbatch --nodes=1-2 slurm/train.sbatch` trains on 4 ranks; then
# node rn2 is lost at a random point of a step:
#   kill          kill -9 of everything on rn2 (its slurmd, slurmstepd and ranks);
#   cut           rn2's link taken down (its processes live on, unreachable);
#   checkpoint    kill -9 while checkpoints are being written (one every step);
#   middle        4 nodes of 1 rank, rn3 killed: only its neighbours (rn2, rn4) notice it,
#                 not the node running the batch script; the run restarts on 3 nodes (dp 3,
#                 4 micro-batches of 1 clip per rank: the global batch of 12 stays).
# Then: reel's ranks end within the bound with a message naming rn2 and its ranks; the
# batch script starts the run again at once on rn1 alone, at half the ranks (dp and
# micro-batches from the new world, the same global batch), which resumes from the
# newest complete checkpoint; from the resume step on its losses match, within 1e-5, a run resumed from
# that checkpoint without any failure; metrics.jsonl has every step once. The time from
# the loss to the first new step is printed, split into its parts.
# Usage: test_node_loss.sh path/to/reel repository-root kill|cut|checkpoint|middle (77: skipped)
set -uo pipefail
reel=$1 root=$2 mode=$3
cluster=(bash "$root/scripts/cluster.sh")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
multinode_can_run || exit 77
# The layout before and after the loss of `victim` (reel's message names its ranks).
nodes=2 per_node=2 victim=rn2 victim_ranks="ranks 2,3" address=10.213.7.12 batch=(--data.global_batch 8 --data.micro_batch 2)
after="1 node(s) x 2 task(s)" after_micro="global batch 8 x 2 micro" after_ranks=2 request=1-2
if [ "$mode" = middle ]; then
  nodes=4 per_node=1 victim=rn3 victim_ranks="rank 2" address=10.213.7.13 batch=(--data.global_batch 12 --data.micro_batch 1)
  # Exactly 4: with 1 task per node, Slurm meets a range's task count on its first node.
  after="3 node(s) x 3 task(s)" after_micro="global batch 12 x 4 micro" after_ranks=3 request=4
fi
multinode_up node-loss $nodes
now() { date +%s.%N; }

"$reel" data --out "$work/world.h5" --clips 48 --seed 5 > /dev/null || exit 1
every=10 steps=120
[ "$mode" = checkpoint ] && every=1 steps=40  # a write in flight at almost any moment
common=(--config "$root/configs/tiny.ini" --data.path "$work/world.h5" "${batch[@]}" --data.eval_clips 4 --run.eval_every 0 --run.steps $steps --run.log_every 1 --checkpoint.every $every
        --checkpoint.keep 0 --run.plot false --dist.threads 1 --dist.node_timeout 5)
job=$("${cluster[@]}" exec ctl env REEL="$reel" sbatch --parsable --chdir "$root" --nodes $request --ntasks-per-node $per_node \
      --output "$work/job.log" "$root/slurm/train.sbatch" "$work/run" "${common[@]}") || { bad "sbatch failed"; exit 1; }
until_ok 120 lines_at_least "$work/run/metrics.jsonl" 9 || { cat "$work/job.log"; bad "the job did not start training"; exit 1; }
complete() { compgen -G "$work/run/checkpoints/step_*" > /dev/null; }  # something to resume from
until_ok 60 complete || { bad "no complete checkpoint"; exit 1; }
log_has "$work/job.log" "on $nodes node(s) x $((nodes * per_node)) task(s)" || bad "the first start did not run on $nodes nodes"
partial=""
if [ "$mode" = checkpoint ]; then  # the moment a checkpoint is being written
  in_flight() { partial=$(cd "$work/run/checkpoints" && ls -d .tmp_step_* 2> /dev/null | head -n 1); [ -n "$partial" ]; }
  until_ok 20 in_flight || bad "no checkpoint write seen in flight"
else
  sleep "0.$((RANDOM % 10))"  # somewhere inside a step
fi
lost_at=$(now)
case $mode in
  cut) "${cluster[@]}" cut $victim > /dev/null ;;
  *) "${cluster[@]}" kill $victim > /dev/null ;;
esac
echo "$mode: $victim lost at step $(tail -n 1 "$work/run/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/') (last line written)"

# Detection, requeue, restart, resume, first new step: each observed as it happens.
t_named=; t_ended=; t_started=; t_resumed=; t_step=
resumed_lines=$(wc -l < "$work/run/metrics.jsonl")
for _ in $(seq 1200); do  # 240 s at most
  [ -z "$t_named" ] && log_has "$work/job.log" "node lost: node $victim ($address, $victim_ranks)" && t_named=$(now)
  [ -z "$t_ended" ] && grep -qE "srun: error: .*task [0-9]+: (Exited|Killed)" "$work/job.log" && t_ended=$(now)
  [ -z "$t_started" ] && log_has "$work/job.log" "start 2 on" && t_started=$(now)
  [ -z "$t_resumed" ] && log_has "$work/job.log" "resumed from " && t_resumed=$(now) &&
    resumed_lines=$(wc -l < "$work/run/metrics.jsonl")
  # The first step after the resume: metrics.jsonl was rewritten to end at the resume step.
  [ -n "$t_resumed" ] && [ -z "$t_step" ] && [ "$(wc -l < "$work/run/metrics.jsonl")" -gt "$resumed_lines" ] && t_step=$(now)
  log_has "$work/job.log" "job $job: done" && break
  sleep 0.2
done
cp "$work/job.log" "$work/job.copy.log"
[ -n "$t_named" ] || { tail -n 30 "$work/job.log"; bad "no message naming node $victim and its $victim_ranks"; }
if ! log_has "$work/job.log" "job $job: done"; then
  grep "reel.sbatch" "$work/job.log"
  "${cluster[@]}" exec ctl scontrol show job "$job" | grep -E "JobState|Reason|ExcNodeList|NodeList|StartTime|Restarts"
  "${cluster[@]}" exec ctl sinfo -N
  bad "the requeued job did not finish"
  exit 1
fi
log_has "$work/job.log" "start 2 on $after, without $victim" || bad "the second start did not run on $after without $victim"
log_has "$work/job.log" "$after_micro" || bad "the second start did not keep the global batch ($after_micro)"
ckpt=$(grep -o "resumed from [^ ]*" "$work/job.log" | tail -n 1 | cut -d' ' -f3)
[ -n "$ckpt" ] && [ -d "$ckpt" ] || { bad "no resume from a checkpoint in the log"; exit 1; }
if [ -n "$partial" ]; then  # the checkpoint being written when the node went was not the one loaded
  echo "$mode: $partial was being written when $victim was lost; resumed from $(basename "$ckpt")"
  # Loaded only under its final name, which a checkpoint gets once every rank has written
  # its file (it may have been completed after the loss: then it is whole).
  case $(basename "$ckpt") in step_*) ;; *) bad "resumed from $ckpt, not a complete checkpoint" ;; esac
fi
awk -v a="$lost_at" -v n="$t_named" -v q="$t_ended" -v s="$t_started" -v r="$t_resumed" -v f="$t_step" 'BEGIN {
  printf "recovery (%s): named %.1f s after the loss, srun ended %.1f, restarted %.1f, resumed %.1f, first new step %.1f\n",
         "'"$mode"'", n - a, q - a, s - a, r - a, f - a }'

# The reference: the same checkpoint resumed on 2 ranks of one node, nothing lost.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe --bind-to none -np $after_ranks \
  "$reel" train --run.dir "$work/ref" --run.resume "$ckpt" --run.lock false "${common[@]}" > "$work/ref.log" 2>&1 \
  || { tail "$work/ref.log"; bad "the reference resume failed"; }
"$root/.venv/bin/python" - "$work/run/metrics.jsonl" "$work/ref/metrics.jsonl" "$steps" <<'PY' || bad "see above"
import collections, json, sys
run = [json.loads(l) for l in open(sys.argv[1])]
ref = {r["step"]: r for r in map(json.loads, open(sys.argv[2]))}
steps = [r["step"] for r in run]
dup = [s for s, n in collections.Counter(steps).items() if n > 1]
assert not dup and steps == list(range(1, int(sys.argv[3]) + 1)), f"metrics.jsonl steps: duplicated {dup}, have {steps}"
for r in run:
    if r["step"] in ref:
        for key in ("loss", "grad_norm"):
            a, b = r[key], ref[r["step"]][key]
            assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), f"step {r['step']} {key}: {a} after the loss, {b} resumed without one"
print(f"steps 1-{sys.argv[3]} once each; the {len(ref)} steps after the resume match a failure-free resume within 1e-5")
PY
[ $fail -eq 0 ] && echo "node loss ($mode): ok"
exit $fail
