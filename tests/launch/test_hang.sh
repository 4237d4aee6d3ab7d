#!/usr/bin/env bash
# A rank stopped with SIGSTOP in the middle of training: the live rank's watchdog notices
# its wait passing --dist.timeout, writes a dump of its recent collectives to the run
# directory and aborts the job, which ends with a non-zero exit within seconds (not
# hours). Then `reel hang RUN_DIR` reads the dumps: it must name the stopped rank as the
# likely cause and the collective the live rank's dump says it waits in. Usage: test_hang.sh path/to/reel repository-root [TRAIN OPTIONS...] (e.g. with
# asynchronous reduction, so that the collectives in flight behind the backward are
# what the live rank waits on)
set -uo pipefail
reel=$1 root=$2
shift 2
work=$(mktemp -d)
trap 'pkill -KILL -P "${pid:-0}" 2>/dev/null; rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1
mpirun --oversubscribe --bind-to none -np 2 "$reel" train --config "$root/configs/tiny.ini" \
  --data.path "$work/world.h5" --run.dir "$work/run" --run.steps 100000 --run.log_every 1000 \
  --dist.timeout 5 --dist.threads 1 "$@" > "$work/out.log" 2>&1 &
pid=$!
for _ in $(seq 120); do [ "$(wc -l < "$work/run/metrics.jsonl" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.5; done
victim=$(pgrep -P "$pid" | tail -n 1)
[ -n "$victim" ] || { echo "FAIL: no rank process under mpirun"; exit 1; }
victim_rank=$(tr '\0' '\n' < "/proc/$victim/environ" | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
[ -n "$victim_rank" ] || { echo "FAIL: no OMPI_COMM_WORLD_RANK in the environment of process $victim"; exit 1; }
kill -STOP "$victim"
start=$(date +%s)
wait "$pid"
rc=$?
took=$(( $(date +%s) - start ))
kill -KILL "$victim" 2>/dev/null
fail=0
[ $rc -ne 0 ] || { echo "FAIL: exit 0 after a hang"; fail=1; }
[ $took -le 30 ] || { echo "FAIL: took $took s to end (timeout 5 s)"; fail=1; }
grep -q "hang detected on rank" "$work/out.log" || { echo "FAIL: no hang message"; fail=1; }
ls "$work"/run/hang_rank*.txt > /dev/null 2>&1 || { echo "FAIL: no dump in the run directory"; fail=1; }
grep -qh "recent collectives" "$work"/run/hang_rank*.txt 2>/dev/null || { echo "FAIL: the dump lacks the collectives"; fail=1; }
if [ $fail -ne 0 ]; then tail -n 20 "$work/out.log"; exit 1; fi

# reel hang: the stopped rank is the likely cause, and the stuck collective is the one a
# live rank's dump waits in (named in its wait, its communicator's last call, or, for a
# group of one queued behind another communicator's call, that call in its history).
hang_out=$("$reel" hang "$work/run" 2>&1)
hang_rc=$?
printf '%s\n' "$hang_out"
[ $hang_rc -eq 0 ] || { echo "FAIL: reel hang exited $hang_rc"; fail=1; }
grep -q "^likely cause: rank $victim_rank (no dump)" <<< "$hang_out" || { echo "FAIL: reel hang does not blame rank $victim_rank"; fail=1; }
grep -q "^    rank $victim_rank: no dump" <<< "$hang_out" || { echo "FAIL: rank $victim_rank not listed as never entered"; fail=1; }
stuck=$(sed -n 's/^stuck in: \([a-z_]*\) #\([0-9]*\) on \([a-z]*\).*/\1 \2 \3/p' <<< "$hang_out" | head -n 1)
read -r op seq comm <<< "$stuck"
[ -n "$comm" ] || { echo "FAIL: no 'stuck in: OP #N on COMM' line"; fail=1; }
if [ -n "$comm" ] && ! grep -qF -e "in $op #$seq on $comm " -e "    $comm #$seq $op " -e "#$seq $op on $comm " "$work"/run/hang_rank*.txt; then
  echo "FAIL: no dump waits in $op #$seq on $comm"; fail=1
fi
"$reel" hang --json "$work/run" | tr -d ' \n' | grep -q "\"likely_cause\":\[$victim_rank\]" ||
  { echo "FAIL: reel hang --json does not give likely_cause [$victim_rank]"; fail=1; }
if [ $fail -ne 0 ]; then cat "$work"/run/hang_rank*.txt; exit 1; fi
echo "a stopped rank ends the job in $took s with a dump: ok; reel hang names rank $victim_rank and $op #$seq on $comm"
