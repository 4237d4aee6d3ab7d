#!/usr/bin/env bash
# scripts/convert_videos.py on a generated video (a GIF of a moving square, with actions
# in a .npy beside it); reel must read the result: `reel data --inspect`.
# Usage: test_convert.sh PYTHON convert_videos.py REEL
set -euo pipefail
py=$1 convert=$2 reel=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$py" - "$dir" <<'PY'
import sys, numpy as np, imageio.v3 as iio
d = sys.argv[1]
frames = np.zeros((26, 32, 32, 3), np.uint8)
for t in range(26):
    frames[t, 4 + t // 2: 10 + t // 2, 3 + t: 9 + t] = (255, 128, 0)
iio.imwrite(f"{d}/square.gif", frames)
np.save(f"{d}/square.npy", np.ones((26, 2), np.float32))
PY
"$py" "$convert" --out "$dir/mine.h5" --frames 8 --height 16 --width 16 "$dir/square.gif"
"$reel" data --inspect "$dir/mine.h5" | tee "$dir/inspect.txt"
grep -q "mine.h5: 3 clips of 8x16x16x3 (T x H x W x C), 2 action dims" "$dir/inspect.txt" \
  || { echo "FAIL: the converted file's shape or action dims"; exit 1; }
