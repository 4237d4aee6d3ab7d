#!/usr/bin/env bash
# slurm/ scripts against a real Slurm on localhost (tests/slurm/local_cluster.sh):
#   1. preemption: `scancel --signal=USR1 --batch` -> every rank finishes its step,
#      checkpoints, exits 75 -> the script requeues -> the next start resumes and
#      finishes with per-step losses identical to an uninterrupted run;
#   1b. a rank SIGKILLed before the first checkpoint: requeued, afresh, the same losses;
#   1c. a second job into a run directory in use: refused naming the first, not requeued;
#   2. a time limit: Slurm's own USR1 before the limit does the same (restart limit 0
#      here: it stops with a checkpoint and says it is not requeued);
#   3. a 2-index job array from a sweep file: two run directories with their settings,
#      and the summary table.
# Usage: test_slurm_train.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/local_cluster.sh"
slurm_start || exit 1
work=$(mktemp -d /tmp/reel-slurm-train.XXXXXX)
chmod 755 "$work"
trap 'slurm_stop; rm -rf "$work"' EXIT
export REEL=$reel OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# until SECONDS COMMAND...: polls COMMAND every 0.5 s; false after SECONDS.
until_ok() {
  local limit=$1; shift
  for _ in $(seq $((limit * 2))); do "$@" && return 0; sleep 0.5; done
  return 1
}
log_has() { grep -q -- "$2" "$1" 2>/dev/null; }
lines_at_least() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }
job_gone() { [ -z "$(squeue -h -j "$1" 2>/dev/null)" ]; }
job_pending() { squeue -h -j "$1" -o %T 2>/dev/null | grep -q PENDING; }

"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
common=(--config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.eval_clips 8 --run.eval_every 0
        --run.log_every 1000 --checkpoint.every 0 --dist.threads 1)
cd "$root" || exit 1  # slurm/sweep.sbatch finds slurm/train.sbatch under the submit directory

# 1. Preemption, requeue, resume.
srun --mpi=pmix -n 2 "$reel" train --run.dir "$work/ref" --run.steps 80 "${common[@]}" > "$work/ref.log" 2>&1 \
  || { tail -5 "$work/ref.log"; bad "the uninterrupted reference run failed"; }
job=$(sbatch --parsable -n 2 --output="$work/preempt.log" slurm/train.sbatch "$work/run" --run.steps 80 "${common[@]}")
until_ok 60 lines_at_least "$work/run/metrics.jsonl" 10 || bad "the job did not start training"
scancel --signal=USR1 --batch "$job"
until_ok 60 log_has "$work/preempt.log" "requeueing" || bad "no checkpoint-and-requeue after USR1"
until_ok 30 job_pending "$job" || bad "the job was not requeued"
sleep 5  # the first start's step is still being cleaned up; Slurm's own ~2-minute hold covers this
scontrol update jobid="$job" StartTime=now  # Slurm holds a requeued job ~2 minutes
until_ok 120 log_has "$work/preempt.log" "job $job: done" || bad "the requeued job did not finish"
log_has "$work/preempt.log" "stopped on request after step" || bad "no stop message"
log_has "$work/preempt.log" "resumed from .*step_" || bad "the second start did not resume"
python3 - "$work/ref/metrics.jsonl" "$work/run/metrics.jsonl" <<'PY' || bad "losses differ from the uninterrupted run"
import json, sys
ref, run = ({r["step"]: r["loss"] for r in map(json.loads, open(p))} for p in sys.argv[1:])
assert len(ref) == 80 and sorted(run) == sorted(ref), f"steps {len(ref)} vs {len(run)}"
diff = [s for s in ref if ref[s] != run[s]]
assert not diff, f"steps {diff[:5]} differ: {[(ref[s], run[s]) for s in diff[:3]]}"
print("preemption: 80 per-step losses identical to the uninterrupted run")
PY

# 1b. A crash before the first checkpoint (a rank SIGKILLed; checkpoint.every 0): the
# script requeues the job, and the next start begins the run afresh and finishes it with
# the uninterrupted run's losses (before, --run.resume auto refused such a directory).
job=$(sbatch --parsable -n 2 --output="$work/crash.log" slurm/train.sbatch "$work/crash" --run.steps 80 "${common[@]}")
until_ok 60 lines_at_least "$work/crash/metrics.jsonl" 5 || bad "the crash job did not start training"
victim=$(for p in $(pgrep -f -- "--run.dir $work/crash "); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = reel ] && echo "$p"; done | tail -n 1)
[ -n "$victim" ] && kill -KILL "$victim" || bad "no rank of the crash job to kill"
[ -e "$work/crash/checkpoints/latest" ] && bad "the crash job had a checkpoint before the kill"
until_ok 60 log_has "$work/crash.log" "after training had started; requeueing" || bad "a crash after training started was not requeued"
until_ok 30 job_pending "$job" || bad "the crashed job was not requeued"
sleep 5
scontrol update jobid="$job" StartTime=now
until_ok 120 log_has "$work/crash.log" "job $job: done" || bad "the requeued crashed job did not finish"
log_has "$work/crash.log" "starting the run afresh" || bad "the second start did not say it starts afresh"
python3 - "$work/ref/metrics.jsonl" "$work/crash/metrics.jsonl" <<'PY' || bad "the crashed run's losses differ from the uninterrupted run"
import json, sys
ref, run = ({r["step"]: r["loss"] for r in map(json.loads, open(p))} for p in sys.argv[1:])
assert ref == run, f"{len(ref)} vs {len(run)} steps"
print("crash before the first checkpoint: requeued, 80 per-step losses identical to the uninterrupted run")
PY

# 1c. Two jobs into one run directory: the second is refused naming the first job, and is
# not requeued (it would be refused again, or later resume the other job's run).
# (One core each, so that both run at once on the 2-core node.)
one=(-n 1 --ntasks-per-node 1)
busy=$(sbatch --parsable "${one[@]}" --output="$work/busy.log" slurm/train.sbatch "$work/busy" --run.steps 100000 "${common[@]}")
until_ok 60 lines_at_least "$work/busy/metrics.jsonl" 2 || bad "the first job into the shared directory did not start"
job=$(sbatch --parsable "${one[@]}" --output="$work/refused.log" slurm/train.sbatch "$work/busy" --run.steps 100000 "${common[@]}")
until_ok 60 job_gone "$job" || { bad "the refused job did not end"; scancel "$job"; }
log_has "$work/refused.log" "is in use by another reel train (.*Slurm job $busy," || bad "the refusal does not name the first job"
log_has "$work/refused.log" "before training started: not requeued" || bad "the refused job was requeued"
job_gone "$busy" && bad "the first job ended next to the refused one"
scancel "$busy"
until_ok 60 job_gone "$busy" || bad "the first job did not end on scancel"
log_has "$work/busy.log" "cancelled (SIGTERM; exit .*): not requeued" || bad "the cancelled job does not say it is not requeued"

# 2. A time limit: Slurm signals before it; with no restarts left the run stops with a checkpoint.
# (Slurm sends the signal up to a minute early: 75 s before a 2-minute limit lands after
# the ranks have started, which a tighter setting does not guarantee.)
job=$(REEL_MAX_RESTARTS=0 sbatch --parsable -n 2 --time=2 --signal=B:USR1@75 --output="$work/limit.log" \
        slurm/train.sbatch "$work/limit" --run.steps 1000000 "${common[@]}")
until_ok 150 job_gone "$job" || bad "the time-limited job did not end"
log_has "$work/limit.log" "SIGUSR1" || bad "no SIGUSR1 before the time limit"
log_has "$work/limit.log" "stopped on request after step" || bad "the time-limited job did not stop cleanly"
log_has "$work/limit.log" "not requeued: 0 restart" || bad "the time-limited job was requeued past its limit"
ls "$work/limit/checkpoints" 2>/dev/null | grep -q step_ || bad "no checkpoint after the time-limit signal"

# 3. A job array over a sweep file, and its summary.
printf '# learning rates\n--optim.lr 1e-3\n\n--optim.lr 3e-3\n' > "$work/sweep.txt"
job=$(sbatch --parsable --array=0-1 -n 1 --output="$work/sweep-%A_%a.log" slurm/sweep.sbatch "$work/sweep.txt" \
        "$work/sweep" --run.steps 10 "${common[@]}")
until_ok 120 job_gone "$job" || bad "the array did not finish"
grep -q "^lr = 0.001$" "$work/sweep/0/config.ini" 2>/dev/null || bad "index 0 did not train with lr 1e-3"
grep -q "^lr = 0.003$" "$work/sweep/1/config.ini" 2>/dev/null || bad "index 1 did not train with lr 3e-3"
table=$(bash slurm/summary.sh "$work/sweep") || bad "summary failed"
echo "$table"
[ "$(grep -c '^| [01] | optim.lr=0.00[13] | 10 |' <<< "$table")" -eq 2 ] || bad "the summary lacks the two runs"

if [ $fail -ne 0 ]; then
  for f in "$work"/*.log; do echo "== $f"; tail -n 15 "$f"; done
  exit 1
fi
echo "slurm train scripts: ok"
