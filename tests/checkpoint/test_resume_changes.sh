#!/usr/bin/env bash
# What a resumed run may change (docs/checkpoint.md), on 2 CPU ranks:
#  - a changed learning rate resumes, with the change logged as a warning (key: old -> new);
#  - the same data under another path resumes, the move logged;
#  - another data file (other clips) is refused naming both files, both clip counts and
#    both content hashes and the two ways forward; nothing is removed; with
#    --run.allow_data_change true it resumes, with a warning;
#  - a changed model.dim is refused before loading, naming the key with both values and
#    advising nothing destructive;
#  - a data file without the content_sha256 attribute is hashed at start (logged with the
#    time), and the checkpoint records the same hash as reel data stores.
# Usage: test_resume_changes.sh path/to/reel path/to/python
set -euo pipefail
reel=$1 python=$2
dir=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; exit 1; }
"$reel" data --out "$dir/world.h5" --clips 40 --seed 2 > /dev/null
"$reel" data --out "$dir/other.h5" --clips 36 --seed 3 > /dev/null
cp "$dir/world.h5" "$dir/moved.h5"
attr() {  # attr FILE: its content_sha256 attribute
  "$python" -c 'import sys, h5py; print(h5py.File(sys.argv[1])["/"].attrs["content_sha256"].decode())' "$1"
}
world_sha=$(attr "$dir/world.h5") other_sha=$(attr "$dir/other.h5")
[ "${#world_sha}" -eq 64 ] && [ "$world_sha" != "$other_sha" ] || fail "content hashes '$world_sha' '$other_sha'"
# train RUN STEPS DATA [options...], with the model width $dim.
dim=64
train() {
  mpirun --oversubscribe --bind-to none -np 2 "$reel" train --run.dir "$dir/$1" --run.steps "$2" --data.path "$dir/$3" \
    --data.global_batch 8 --data.eval_clips 4 --run.eval_every 0 --checkpoint.every 2 --model.dim "$dim" \
    --model.depth 2 --run.peak_flops 1e11 --run.plot false --dist.threads 1 "${@:4}"
}
train run 2 world.h5 > "$dir/first.log" 2>&1 || { cat "$dir/first.log"; fail "the first run failed"; }
ckpt=$dir/run/checkpoints/step_00000002

# A changed learning rate: resumed, the change said as a warning.
train run 4 world.h5 --optim.lr 0.001 > "$dir/lr.log" 2>&1 || { cat "$dir/lr.log"; fail "the lr resume failed"; }
grep -q "\[warning\] changed since the checkpoint: optim.lr: 3e-04 -> 0.001" "$dir/lr.log" || fail "the lr change was not logged"
grep -q "resumed from .*step_00000002 at step 2" "$dir/lr.log" || fail "the lr run did not resume from step 2"
ckpt=$dir/run/checkpoints/step_00000004

# The same clips under another path: resumed, the move said.
train run 6 moved.h5 --optim.lr 0.001 > "$dir/moved.log" 2>&1 || { cat "$dir/moved.log"; fail "the moved resume failed"; }
grep -q "data file moved: $dir/world.h5 -> $dir/moved.h5 (the same 40 clips, content sha256 $world_sha)" "$dir/moved.log" \
  || fail "the move was not logged"
ckpt=$dir/run/checkpoints/step_00000006

# Other clips: refused, naming both and the ways forward; nothing removed.
if train run 8 other.h5 --optim.lr 0.001 > "$dir/other.log" 2>&1; then fail "a run resumed on another data file"; fi
err=$(grep "reel: error" "$dir/other.log" | tail -n 1)
for part in "was trained on $dir/moved.h5 (40 clips, content sha256 $world_sha)" \
            "data.path $dir/other.h5 holds 36 clips, content sha256 $other_sha" \
            "resume with the original file (--data.path $dir/moved.h5)" "--run.allow_data_change true"; do
  grep -qF -- "$part" <<< "$err" || fail "the data refusal lacks '$part': $err"
done
"$reel" ckpt verify "$ckpt" > /dev/null || fail "the checkpoint no longer verifies after the refusal"
train run 8 other.h5 --optim.lr 0.001 --run.allow_data_change true > "$dir/allowed.log" 2>&1 \
  || { cat "$dir/allowed.log"; fail "--run.allow_data_change true did not resume"; }
grep -q "\[warning\] run.allow_data_change: resuming on other data: .*36 clips" "$dir/allowed.log" \
  || fail "the accepted data change was not warned about"
grep -q "resumed from .*step_00000006 at step 6" "$dir/allowed.log" || fail "the allowed run did not resume from step 6"

# A changed model: refused before loading, every changed key named, nothing destructive advised.
dim=32
if train run 10 other.h5 --optim.lr 0.001 > "$dir/model.log" 2>&1; then fail "a changed model resumed"; fi
dim=64
err=$(grep "reel: error" "$dir/model.log" | tail -n 1)
grep -q "model.dim is 64 in the checkpoint, 32 in this configuration" <<< "$err" || fail "the model refusal does not name model.dim: $err"
grep -q "another run.dir" <<< "$err" || fail "the model refusal gives no way forward: $err"
grep -qi "overwrite" "$dir/model.log" && fail "the model refusal advises --run.overwrite (it would delete the checkpoints)"
grep -q "resumed from" "$dir/model.log" && fail "a changed model loaded a checkpoint"

# A file without the attribute: hashed at start, the same hash recorded.
"$python" -c 'import sys, h5py; del h5py.File(sys.argv[1], "a").attrs["content_sha256"]' "$dir/moved.h5"
train fresh 2 moved.h5 > "$dir/fresh.log" 2>&1 || { cat "$dir/fresh.log"; fail "the run on a file without a hash failed"; }
grep -Eq "data file $dir/moved.h5 has no content hash .*hashed its 40 clips \([0-9.]+ MB\) in [0-9.]+ s" "$dir/fresh.log" \
  || fail "hashing a file without content_sha256 was not logged with its time"
"$python" - "$dir/fresh/checkpoints/step_00000002/manifest.json" "$world_sha" <<'PY'
import json, sys
train = json.load(open(sys.argv[1]))["train"]
assert train["data_sha256"] == sys.argv[2] and train["data_clips"] == 40, train
PY
echo "resume changes: lr logged, a moved file followed, other data refused and allowed, a changed model refused: ok"
