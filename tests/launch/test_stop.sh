#!/usr/bin/env bash
# reel train under scripts/reel-mpirun, stopped by signals:
#   SIGUSR1 -> every rank finishes its step, checkpoints, exits 75; the same command
#              resumes and ends with per-step losses identical to an uninterrupted run;
#   SIGTERM -> the same stop and checkpoint (mpirun itself then exits non-zero).
# Usage: test_stop.sh path/to/reel repository-root
set -uo pipefail
export REEL=$1
root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
lines_at_least() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }
"$REEL" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
cmd=("$root/scripts/reel-mpirun" -n 2 --threads 1 -- train "$root/configs/tiny.ini" --data.path "$work/world.h5"
     --data.eval_clips 8 --run.eval_every 0 --run.log_every 1000 --checkpoint.every 0 --run.steps 60)
train() { "${cmd[@]}" --run.dir "$1"; }  # the same command every time
# stop SIGNAL RUN_DIR: starts a run, signals it after 8 steps, returns its exit code.
stop() {
  "${cmd[@]}" --run.dir "$work/$2" > "$work/$2.log" 2>&1 &  # $! is mpirun itself (the script execs it)
  local pid=$!
  for _ in $(seq 120); do lines_at_least "$work/$2/metrics.jsonl" 8 && break; sleep 0.5; done
  kill "-$1" "$pid"
  wait "$pid"
}
train "$work/ref" > "$work/ref.log" 2>&1 || bad "the uninterrupted run failed"
stop USR1 usr1
rc=$?
[ $rc -eq 75 ] || bad "SIGUSR1: exit $rc, expected 75"
grep -q "stopped on request after step" "$work/usr1.log" || bad "SIGUSR1: no stop message"
train "$work/usr1" > "$work/usr1-resume.log" 2>&1 || bad "the resumed run failed"
grep -q "resumed from" "$work/usr1-resume.log" || bad "the second run did not resume"
python3 - "$work/ref/metrics.jsonl" "$work/usr1/metrics.jsonl" <<'PY' || bad "losses differ from the uninterrupted run"
import json, sys
ref, run = ({r["step"]: r["loss"] for r in map(json.loads, open(p))} for p in sys.argv[1:])
assert len(ref) == 60 and ref == run, f"{len(ref)} vs {len(run)} steps; first difference at {min(s for s in ref if ref.get(s) != run.get(s))}"
print("SIGUSR1 under mpirun: 60 per-step losses identical to the uninterrupted run")
PY
stop TERM term
grep -q "stopped on request after step" "$work/term.log" || bad "SIGTERM: no stop message"
ls "$work/term/checkpoints" | grep -q step_ || bad "SIGTERM: no checkpoint"
if [ $fail -ne 0 ]; then
  for f in "$work"/*.log; do echo "== $f"; tail -n 8 "$f"; done
  exit 1
fi
echo "reel train stops on signals: ok"
