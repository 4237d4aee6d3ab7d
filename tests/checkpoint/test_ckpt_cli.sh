#!/usr/bin/env bash
# Checkpoints from the command line, on 2 CPU ranks:
#  - a rank SIGKILLed in the middle of a save ends the job; the previous checkpoint stays
#    complete, the partial one is listed as partial and ignored; `reel train` again
#    resumes from the complete one and finishes, with every step in metrics.jsonl once;
#  - a run directory that holds a run is refused with --run.resume never;
#  - `reel ckpt list | verify | inspect | export`; a flipped byte fails verify (exit 1);
#  - the exported model opens in h5py and in the safetensors reader with the names,
#    shapes and values of the checkpoint's parameters;
#  - docs/checkpoint.md's h5py recipe: every manifest checksum recomputed, string
#    attributes decoded, the data file's content hash recomputed and equal to the stored one;
#  - truncated or text "weights" are refused with the file named and exit 1.
# Usage: test_ckpt_cli.sh path/to/reel path/to/python
set -euo pipefail
reel=$1 python=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; exit 1; }
"$reel" data --out "$dir/world.h5" --clips 40 --seed 2 > /dev/null
train=(mpirun --oversubscribe --bind-to none -np 2 "$reel" train --data.path "$dir/world.h5" --run.dir "$dir/run"
       --run.steps 6 --data.global_batch 8 --data.eval_clips 4 --run.eval_every 0 --checkpoint.every 2
       --model.dim 64 --model.depth 2 --run.peak_flops 1e11)
# Rank 1 dies while writing the step-4 checkpoint.
if REEL_FAULT_INJECT=kill_in_save:1:4 "${train[@]}" > "$dir/killed.log" 2>&1; then fail "a killed job reported success"; fi
ckpts=$dir/run/checkpoints
[ -f "$ckpts/step_00000002/manifest.json" ] || fail "the step-2 checkpoint is not complete"
[ -d "$ckpts/.tmp_step_00000004" ] || fail "no partial directory for step 4"
"$reel" ckpt list "$dir/run" | tee "$dir/list.txt"
grep -q "step_00000002 .*complete" "$dir/list.txt" || fail "list does not show step 2 complete"
grep -q ".tmp_step_00000004 .*partial" "$dir/list.txt" || fail "list does not show step 4 partial"
"$reel" ckpt verify "$ckpts/step_00000002" | grep -q "every checksum matches" || fail "verify step 2"
# Refused, not overwritten, without resuming.
if "${train[@]}" --run.resume never > "$dir/refused.log" 2>&1; then fail "a run directory holding a run was overwritten"; fi
grep -q "holds a run" "$dir/refused.log" || fail "no reason given for the refusal"
# Resume: from step 2, the partial directory reported.
"${train[@]}" > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "the resumed run failed"; }
grep -q "ignoring partial checkpoint .*tmp_step_00000004" "$dir/resumed.log" || fail "the partial checkpoint was not reported"
grep -q "resumed from .*step_00000002 at step 2" "$dir/resumed.log" || fail "did not resume from step 2"
"$python" - "$dir/run/metrics.jsonl" <<'PY'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1])]
assert steps == [1, 2, 3, 4, 5, 6], f"metrics steps {steps}"
PY
last=$ckpts/step_00000006
"$reel" ckpt inspect "$last" > "$dir/inspect.txt"
grep -q "params/block0.qkv.weight" "$dir/inspect.txt" || fail "inspect lists no parameters"
"$reel" ckpt export "$last" --out "$dir/model.safetensors" > /dev/null
"$reel" ckpt export "$last" --out "$dir/export.h5" > /dev/null
"$python" - "$dir" "$last" <<'PY'
import sys, h5py, numpy as np
from safetensors.numpy import load_file
d, last = sys.argv[1], sys.argv[2]
st = load_file(f"{d}/model.safetensors")
with h5py.File(f"{d}/export.h5") as h, h5py.File(f"{d}/run/model.h5") as final:
    names = set(h["params"].keys())
    assert names == set(st.keys()) == set(final["params"].keys()), "parameter names differ"
    for n in names:
        a, b, c = h["params"][n][...], st[n], final["params"][n][...]
        assert a.shape == b.shape == c.shape, f"{n}: shapes {a.shape} {b.shape} {c.shape}"
        assert np.array_equal(a, b) and np.array_equal(a, c), f"{n}: values differ"
    # The checkpoint's own shards, read with h5py alone, hold the same values.
    flat = np.concatenate([h5py.File(f"{last}/rank{r}.h5")["params"]["block0.qkv.weight"][...] for r in (0, 1)
                           if "block0.qkv.weight" in h5py.File(f"{last}/rank{r}.h5")["params"]])
    assert np.array_equal(flat, h["params"]["block0.qkv.weight"][...].reshape(-1)), "shards differ from the export"
print(f"exported {len(names)} parameters: h5py and safetensors agree")
PY
# docs/checkpoint.md's recipe, with h5py and the standard library only: every manifest
# checksum recomputed (zlib CRC-32 of the float32 little-endian bytes), string attributes
# decoded from bytes, the data file's content hash recomputed and equal to the stored one.
"$python" - "$last" "$dir/world.h5" <<'PY'
import hashlib, json, sys, zlib
import h5py
ckpt, data = sys.argv[1], sys.argv[2]
m = json.load(open(f"{ckpt}/manifest.json"))
checked = 0
for rec in m["files"]:
    with h5py.File(f"{ckpt}/{rec['name']}") as f:
        assert isinstance(f.attrs["format"], bytes) and f.attrs["format"].decode() == "reel-checkpoint"
        assert f["train"].attrs["config_ini"].decode() == m["config_ini"], "config_ini differs from the manifest's"
        assert f["train"].attrs["data_sha256"].decode() == m["train"]["data_sha256"]
        for d in rec["datasets"]:
            raw = f[d["kind"]][d["param"]][...].astype("<f4").tobytes()
            assert len(raw) == 4 * (d["end"] - d["begin"]), d
            assert zlib.crc32(raw) == d["crc32"], f"{rec['name']} {d['kind']}/{d['param']}: crc32 differs"
            checked += 1
h = hashlib.sha256()
with h5py.File(data) as f:
    clips = f["frames"].shape[0]
    for n in range(clips):
        h.update(f["frames"][n].astype("u1").tobytes())
        h.update(f["actions"][n].astype("<f4").tobytes())
assert m["train"]["data_clips"] == clips, (m["train"]["data_clips"], clips)
assert m["train"]["data_sha256"] == h.hexdigest(), "the data file's content hash differs from the checkpoint's"
print(f"docs recipe: {checked} checksums, string attributes and the data hash ({clips} clips) check")
PY
# Weights that are not weights: one line naming the file, exit 1, no stack trace.
head -c 2000 "$dir/run/model.h5" > "$dir/truncated.h5"
echo "not weights" > "$dir/text.h5"
for bad in truncated text; do
  set +e
  "$reel" sample --weights "$dir/$bad.h5" --data "$dir/world.h5" --count 1 --out "$dir/s" > "$dir/$bad.txt" 2>&1; rc=$?
  set -e
  [ "$rc" -eq 1 ] || fail "reel sample on $bad weights exited $rc"
  grep -q "weights file $dir/$bad.h5: " "$dir/$bad.txt" || fail "reel sample on $bad weights did not name the file"
done
# A flipped byte: verify fails with exit 1 and names the dataset.
"$python" - "$last/rank0.h5" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path) as f:
    offset = f["params"]["block0.qkv.weight"].id.get_offset()
with open(path, "r+b") as f:
    f.seek(offset + 3); b = f.read(1); f.seek(offset + 3); f.write(bytes([b[0] ^ 0x40]))
PY
set +e
"$reel" ckpt verify "$last" > "$dir/verify.txt" 2>&1; rc=$?
set -e
[ "$rc" -eq 1 ] || fail "verify of a corrupt checkpoint exited $rc"
grep -q "rank0.h5 dataset /params/block0.qkv.weight: checksum mismatch" "$dir/verify.txt" || fail "verify did not name the dataset"
echo "reel checkpoints from the command line: ok"
