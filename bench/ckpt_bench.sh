#!/usr/bin/env bash
# Checkpoint benchmarks (CPU ranks), from reel train's metrics.jsonl; prints markdown.
#  1. step time while a save is in flight / step time between saves, in the same run (the
#     ratio this machine's run-to-run noise does not blur), and / a run that never saves;
#  2. blocking snapshot time per GB (the part of a save the training thread waits for);
#  3. write bandwidth of the background writer / a plain sequential write of the same
#     bytes to the same disk (dd with fdatasync).
# Model: dim 512, depth 8 (38 M parameters: 0.45 GB of checkpoint: parameters and
# AdamW's two moments, fp32), 2 ranks, saving every 12 steps.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REEL_BUILD_DIR:-$root/build}
steps=${REEL_BENCH_STEPS:-48}
[ -n "${REEL_BENCH_NO_BUILD:-}" ] || bash "$root/scripts/build.sh" --target reel > /dev/null
work=${REEL_BENCH_DIR:-$(mktemp -d -p "$root")}  # on the disk the checkpoints go to
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/launch/reel" data --out "$work/world.h5" --clips 200 --seed 7 > /dev/null
run() {
  local name=$1; shift
  mpirun --oversubscribe --bind-to none -np 2 "$build/launch/reel" train --config "$root/configs/tiny.ini" \
    --data.path "$work/world.h5" --data.eval_clips 0 --run.eval_every 0 --run.steps "$steps" --run.log_every 1000 \
    --model.dim 512 --model.depth 8 --model.preset tiny --run.dir "$work/$name" --run.peak_flops 1e11 "$@" \
    > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
}
run plain --checkpoint.every 0
run saving --checkpoint.every 12
bytes=$(python3 - "$work/saving/metrics.jsonl" <<'PY'
import json, sys
print(max(r.get("checkpoint_bytes", 0) for r in map(json.loads, open(sys.argv[1]))))
PY
)
mib=$(( (2 * bytes + 1048575) / 1048576 ))  # both ranks' files: the save's whole volume
dd_s=$( { /usr/bin/time -f "%e" dd if=/dev/zero of="$work/dd.bin" bs=1M count="$mib" conv=fdatasync status=none; } 2>&1 )
rm -f "$work/dd.bin"
final=$(sed -n "s/.*checkpoint at step $steps complete: .*(rank 0 wrote \([0-9]*\) bytes in \([0-9.]*\) s).*/\1 \2/p" "$work/saving.log")
python3 - "$work/plain/metrics.jsonl" "$work/saving/metrics.jsonl" "$bytes" "$dd_s" $final <<'PY'
import json, statistics, sys
plain = [json.loads(l) for l in open(sys.argv[1])][4:]
saving = [json.loads(l) for l in open(sys.argv[2])][4:]
nbytes, dd_s = int(sys.argv[3]), float(sys.argv[4])
base = statistics.median(r["step_time_s"] for r in plain)
busy = [r["step_time_s"] for r in saving if r["checkpoint_in_flight"]]
idle = [r["step_time_s"] for r in saving if not r["checkpoint_in_flight"]]
snaps = [r["checkpoint_snapshot_s"] for r in saving if "checkpoint_snapshot_s" in r]
writes = [r["checkpoint_write_s"] for r in saving if "checkpoint_write_s" in r]
waits = [r["checkpoint_wait_s"] for r in saving if "checkpoint_wait_s" in r]
gb = nbytes / 1e9
print("| what | target | measured |")
print("|---|---|---|")
print(f"| step time while a save is in flight / between saves, same run | <= 1.05 | "
      f"{statistics.median(busy) / statistics.median(idle):.3f} ({statistics.median(busy) * 1e3:.1f} vs "
      f"{statistics.median(idle) * 1e3:.1f} ms; {len(busy)} steps in flight, {len(idle)} not) |")
print(f"| step time while a save is in flight / a run without saves | - | {statistics.median(busy) / base:.3f} "
      f"({base * 1e3:.1f} ms) |")
print(f"| step time between saves / a run without saves (run-to-run noise) | ~1 | {statistics.median(idle) / base:.3f} |")
print(f"| blocking snapshot per GB of rank file | - | {statistics.median(snaps) / gb:.3f} s/GB "
      f"({statistics.median(snaps) * 1e3:.1f} ms for {nbytes / 2**20:.0f} MiB) |")
print(f"| waiting for the previous save at a new one (every 12 steps) | - | {max(waits) * 1e3:.1f} ms at most |")
total = sum(r["step_time_s"] + r.get("checkpoint_snapshot_s", 0) + r.get("checkpoint_wait_s", 0) for r in saving)
print(f"| training time with saves every 12 steps (steps + snapshots + waits) / without | - | "
      f"{total / sum(r['step_time_s'] for r in plain):.3f} |")
# Both ranks write their (equal) files at once: the save's bandwidth is 2 x one file over
# its writer's time, against dd writing the same 2 files' bytes.
bw, dd_bw = 2 * nbytes / statistics.median(writes), 2 * nbytes / dd_s
print(f"| writer bandwidth while training / dd with fdatasync, same bytes, same disk | >= 0.8 | {bw / dd_bw:.3f} "
      f"({bw / 2**20:.0f} vs {dd_bw / 2**20:.0f} MiB/s) |")
final_bw = 2 * int(sys.argv[5]) / float(sys.argv[6])
print(f"| writer bandwidth of the final save (training done) / dd | >= 0.8 | {final_bw / dd_bw:.3f} "
      f"({final_bw / 2**20:.0f} vs {dd_bw / 2**20:.0f} MiB/s) |")
PY
