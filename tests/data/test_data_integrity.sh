#!/usr/bin/env bash
# Data that proves it is intact:
#   1. reel data writes a checksum per clip and --inspect verifies every clip;
#   2. 64 KiB of random bytes written into the middle of a file: --inspect and reel train
#      both fail naming the file and the clip (before, this trained to the end);
#   3. the schema's dtypes are exact: int8 frames and float64 actions are refused;
#   4. an older file without checksums still inspects and trains, with one warning.
# Usage: test_data_integrity.sh path/to/reel path/to/python repository-root
set -uo pipefail
reel=$1 py=$2 root=$3
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# expect_error LOG REGEX command...: a clean failure (exit 1..125) whose output matches REGEX.
expect_error() {
  local log=$1 regex=$2
  shift 2
  "$@" > "$work/$log.log" 2>&1
  local rc=$?
  { [ $rc -ge 1 ] && [ $rc -lt 126 ]; } || bad "$log: exit $rc, expected a clean error"
  grep -Eq -- "$regex" "$work/$log.log" || bad "$log: no line matches /$regex/"
}
train() {
  timeout 120 "$reel" train --config "$root/configs/tiny.ini" --data.eval_clips 8 --run.eval_every 0 --run.plot false \
    --run.log_every 1000 --run.resume never --run.overwrite true --run.steps 12 "$@"
}
"$reel" data --out "$work/world.h5" --clips 96 --seed 4 > /dev/null || exit 1

# 1. Every clip verified.
"$reel" data --inspect "$work/world.h5" > "$work/inspect.log" 2>&1 || bad "inspect of a good file failed"
grep -q "world.h5: every clip read back and verified against its checksum" "$work/inspect.log" || bad "no verification line"

# 2. Random bytes in the middle of the file.
cp "$work/world.h5" "$work/damaged.h5"
"$py" - "$work/damaged.h5" <<'PY'
import os, random, sys
path = sys.argv[1]
rng = random.Random(19)
with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    f.write(bytes(rng.getrandbits(8) for _ in range(64 * 1024)))
PY
expect_error inspect_damaged "damaged.h5: clip [0-9]+ is damaged: it fails its checksum" "$reel" data --inspect "$work/damaged.h5"
expect_error train_damaged "damaged.h5: clip [0-9]+ is damaged: it fails its checksum" train --data.path "$work/damaged.h5" --run.dir "$work/run_damaged"
grep -q "reel train: done" "$work/train_damaged.log" && bad "train_damaged: trained to the end on a damaged file"

# 3. Exact dtypes.
"$py" - "$work" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/world.h5") as src:
    frames, actions = src["frames"][...], src["actions"][...]
    attrs = dict(src.attrs)
def write(name, f, a, **kw):
    with h5py.File(f"{d}/{name}", "w") as out:
        out.create_dataset("frames", data=f, chunks=(1,) + f.shape[1:], **kw)
        out.create_dataset("actions", data=a, chunks=(1,) + a.shape[1:], **kw)
        out.attrs.update(attrs)
write("int8.h5", frames.astype(np.int8), actions, fletcher32=True)
write("float64.h5", frames, actions.astype(np.float64), fletcher32=True)
write("old.h5", frames, actions)  # as files were written before checksums
PY
expect_error int8 "dataset /frames must be rank 5 uint8, found rank 5 int8" "$reel" data --inspect "$work/int8.h5"
expect_error float64 "dataset /actions must be rank 3 float32, found rank 3 float64" "$reel" data --inspect "$work/float64.h5"

# 4. An older file without checksums: it loads, with one warning.
"$reel" data --inspect "$work/old.h5" > "$work/inspect_old.log" 2>&1 || bad "inspect of an older file failed"
grep -q "old.h5: every clip read back; warning: the file has no checksums" "$work/inspect_old.log" || bad "inspect_old: no warning"
train --data.path "$work/old.h5" --run.dir "$work/run_old" > "$work/train_old.log" 2>&1 || bad "an older file did not train"
[ "$(grep -c "has no checksums" "$work/train_old.log")" -eq 1 ] || bad "train_old: not exactly one warning"

if [ $fail -ne 0 ]; then
  for f in "$work"/*.log; do echo "== $f"; grep -v "\] \[info\]" "$f" | tail -n 4; done
  exit 1
fi
echo "data integrity: checksums verified, damage named by clip, dtypes exact, older files warned: ok"
