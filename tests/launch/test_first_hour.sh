#!/usr/bin/env bash
# What a new user meets in the first hour, beyond the README's own commands (docs.commands):
#   - every configuration in configs/ resolves and dry-runs (the docs name them);
#   - a missing data file is a usage error (exit 2) that names the reason and the command
#     that writes it, before any rank starts;
#   - reel plan --help lists the options plan uses and none of train's others, and plan
#     reads a train INI file (with optim/run keys) as it is;
#   - reel ckpt verify/inspect/export take a run directory for its newest checkpoint;
#   - a run.dir given with a trailing / prints its paths without //.
# usage: test_first_hour.sh REEL SOURCE_DIR
set -uo pipefail
reel=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for ini in "$src"/configs/*.ini; do
  out=$("$reel" train "$ini" --data.path "$work/none.h5" --dry-run 2>&1) || fail "$ini --dry-run: $out"
  grep -q "not there yet" <<< "$out" || fail "$ini --dry-run did not say the data is missing: $out"
  "$reel" plan "$ini" --cluster h100 --gpus 16 --given > /dev/null 2>"$work/plan.err" ||
    fail "reel plan $ini: $(cat "$work/plan.err")"
done
echo "configs: $(ls "$src"/configs/*.ini | wc -l) resolve, dry-run and plan"

out=$("$reel" train "$src/configs/tiny.ini" --data.path "$work/missing/world.h5" --run.dir "$work/run" 2>&1)
rc=$?
[ "$rc" -eq 2 ] || fail "missing data: exit $rc, expected 2 (usage): $out"
grep -q "data.path $work/missing/world.h5: No such file or directory (the folder $work/missing does not exist); write the physics world there first: reel data --out $work/missing/world.h5 --clips 1088 --frames 8 --height 16 --width 16" <<< "$out" ||
  fail "missing data: the message does not name the reason and the command: $out"
[ ! -e "$work/run" ] || fail "missing data: the run directory was made before the usage error"
out=$("$reel" train "$src/configs/1b.ini" --data.path "$work/videos.h5" 2>&1)
grep -q "the model expects videos of 32x256x256 (T x H x W) with 8 action dims per frame: convert yours" <<< "$out" ||
  fail "missing data of the 1b preset: the message does not say what data it needs: $out"
echo "missing data: exit 2, reason and command named"

help=$("$reel" plan --help)
for used in --model.preset --data.global_batch --parallel.sp --cluster --given; do
  grep -q -- "$used" <<< "$help" || fail "reel plan --help does not list $used"
done
for unused in --optim.lr --run.steps --checkpoint.every --dist.threads --log.level --data.path --data.seed; do
  ! grep -q -- "$unused" <<< "$help" || fail "reel plan --help lists $unused, which plan does not use"
done
"$reel" plan "$src/configs/tiny.ini" --cluster cpu --gpus 2 --given --optim.lr 1e-3 > /dev/null ||
  fail "reel plan does not accept train's options it ignores"
echo "reel plan --help: its own options only"
for unused in --dist.desync_every --log.trace; do
  ! "$reel" smoke --help | grep -q -- "$unused" || fail "reel smoke --help lists train's $unused"
done

"$reel" data --out "$work/world.h5" --clips 24 --seed 3 > /dev/null || fail "reel data"
"$reel" train "$src/configs/tiny.ini" --data.path "$work/world.h5" --data.eval_clips 8 --data.global_batch 4 \
  --run.steps 2 --run.eval_every 0 --run.plot false --run.dir "$work/run/" --dist.threads 1 > "$work/train.log" 2>&1 ||
  fail "training 2 steps: $(tail -5 "$work/train.log")"
grep -q "metrics in $work/run/metrics.jsonl" "$work/train.log" || fail "run.dir with a trailing /: $(tail -3 "$work/train.log")"
! grep -q "$work/run//" "$work/train.log" || fail "run.dir with a trailing / printed as run//: $(grep -m1 // "$work/train.log")"
for action in verify inspect; do
  out=$("$reel" ckpt "$action" "$work/run" 2>&1) || fail "reel ckpt $action RUN_DIR: $out"
  grep -q "its newest complete checkpoint, $work/run/checkpoints/step_00000002" <<< "$out" ||
    fail "reel ckpt $action RUN_DIR does not name the checkpoint it took: $out"
done
"$reel" ckpt export "$work/run" --out "$work/model.safetensors" > /dev/null 2>&1 || fail "reel ckpt export RUN_DIR"
[ -s "$work/model.safetensors" ] || fail "reel ckpt export RUN_DIR wrote nothing"
mkdir -p "$work/empty"
out=$("$reel" ckpt verify "$work/empty" 2>&1) && fail "reel ckpt verify of an empty directory succeeded"
grep -q "neither a checkpoint (no manifest.json) nor a run directory with a complete checkpoint" <<< "$out" ||
  fail "reel ckpt verify of an empty directory: $out"
echo "reel ckpt: a run directory stands for its newest complete checkpoint"
echo "first hour: ok"
