#!/usr/bin/env bash
# A full disk under a running job is an error, never a success, and the job keeps its
# last checkpoint:
#   metrics: a run checkpointed at step 8 goes on under a file-size limit (ulimit -f, the
#            ranks' writes fail with EFBIG as on a full disk); metrics.jsonl hits the limit,
#            the job ends non-zero naming the file with every line of the file whole, and
#            the step-8 checkpoint resumes the run to its end with every step's metrics once;
#   logs:    rank 1's log file is /dev/full (every flush fails with ENOSPC): the job ends
#            non-zero naming rank 1 and its log file.
# Usage: test_disk_full.sh path/to/reel repository-root
set -uo pipefail
reel=$1 root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
bad() { echo "FAIL: $*"; fail=1; }
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
# run LIMIT_KIB LOG extra options...: 2 ranks, each under `ulimit -f LIMIT_KIB`.
run() {
  local limit=$1 log=$2
  shift 2
  timeout 120 mpirun --oversubscribe --bind-to none -np 2 bash -c 'ulimit -f "$0"; shift; exec "$@"' "$limit" x \
    "$reel" train --config "$root/configs/tiny.ini" --data.path "$work/world.h5" --data.eval_clips 8 \
    --run.eval_every 0 --run.log_every 1000 --dist.threads 1 "$@" > "$work/$log" 2>&1
}
run unlimited first.log --run.dir "$work/run" --run.steps 8 --checkpoint.every 4 || bad "the first 8 steps failed"
run 12 full.log --run.dir "$work/run" --run.steps 40 --checkpoint.every 0
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || bad "metrics on a full disk: exit $rc (0: reported as success; 124: it hung)"
grep -q "cannot write to metrics file .*/run/metrics.jsonl: File too large" "$work/full.log" \
  || bad "metrics on a full disk: no error naming metrics.jsonl"
grep -q "reel train: done" "$work/full.log" && bad "metrics on a full disk: reported done"
# Every line whole: the failed write was cut back off the file (before: half a line).
python3 - "$work/run/metrics.jsonl" <<'PY' || bad "metrics on a full disk: the file does not end in a whole line"
import json, sys
text = open(sys.argv[1]).read()
assert text.endswith("\n"), f"no newline at the end: ...{text[-40:]!r}"
steps = [json.loads(line)["step"] for line in text.splitlines()]
assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 8, steps
PY
run unlimited resume.log --run.dir "$work/run" --run.steps 40 --checkpoint.every 0 || bad "the resumed run failed"
grep -q "resumed from .*step_00000008 at step 8" "$work/resume.log" || bad "the run did not resume from step 8"
python3 - "$work/run/metrics.jsonl" <<'PY' || bad "metrics after the resume are not steps 1..40 once each"
import json, sys
steps = [json.loads(line)["step"] for line in open(sys.argv[1])]
assert steps == list(range(1, 41)), steps
PY
mkdir -p "$work/logs"
ln -s /dev/full "$work/logs/rank1.log"
run unlimited log.log --run.dir "$work/logrun" --run.steps 40 --log.dir "$work/logs"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || bad "a log on a full disk: exit $rc (0: reported as success; 124: it hung)"
grep -q "error on rank 1 (.*): cannot write the log: .*logs/rank1.log.*No space left on device" "$work/log.log" \
  || bad "a log on a full disk: no error naming rank 1 and its log file"
if [ $fail -ne 0 ]; then
  for f in "$work"/*.log; do echo "== $f"; grep -v "\] \[info\]" "$f" | tail -n 6; done
  exit 1
fi
echo "a full disk under metrics or logs is an error and keeps the last checkpoint: ok"
