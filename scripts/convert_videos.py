#!/usr/bin/env python3
"""Convert videos into reel's HDF5 video schema (docs/data.md).

Each video is read with imageio, resized to HEIGHT x WIDTH (area averaging), cut into
non-overlapping clips of FRAMES frames (the tail is dropped) and appended to /frames.
Actions: VIDEO_STEM.npy beside the video ([frames, A] float) when it exists, else A = 0.
"""
import argparse
import hashlib
import pathlib
import sys

import h5py
import imageio.v3 as iio
import numpy as np


def resize(frame, height, width):
    """Area-average resize of an [h, w, c] uint8 frame (integer factors), else nearest."""
    h, w = frame.shape[:2]
    if h % height == 0 and w % width == 0:
        f = frame.reshape(height, h // height, width, w // width, -1).mean(axis=(1, 3))
        return np.round(f).astype(np.uint8)
    rows = (np.arange(height) * h // height).clip(0, h - 1)
    cols = (np.arange(width) * w // width).clip(0, w - 1)
    return frame[rows][:, cols]


def clips_of(path, frames, height, width):
    video = np.asarray(iio.imread(path, index=None))
    if video.ndim == 3:  # greyscale [T, H, W]
        video = video[..., None]
    if video.ndim != 4:
        raise ValueError(f"{path}: expected a video [T, H, W, C], got shape {video.shape}")
    video = video[..., :3]
    actions_file = pathlib.Path(path).with_suffix(".npy")
    actions = np.load(actions_file).astype(np.float32) if actions_file.exists() else np.zeros((len(video), 0), np.float32)
    if len(actions) < len(video):
        raise ValueError(f"{actions_file}: {len(actions)} action rows for {len(video)} frames")
    for start in range(0, len(video) - frames + 1, frames):
        clip = np.stack([resize(f, height, width) for f in video[start:start + frames]])
        yield clip, actions[start:start + frames]


def content_sha256(frames, actions):
    """reel's content hash (docs/data.md): SHA-256 over the clips in index order, each
    clip's frames (uint8, row-major) then its actions (float32 little-endian, row-major)."""
    h = hashlib.sha256()
    for n in range(len(frames)):
        h.update(np.ascontiguousarray(frames[n], dtype=np.uint8).tobytes())
        h.update(np.ascontiguousarray(actions[n], dtype="<f4").tobytes())
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--height", type=int, default=16)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("videos", nargs="+")
    args = ap.parse_args(argv)
    clips, actions = [], []
    for path in args.videos:
        for clip, act in clips_of(path, args.frames, args.height, args.width):
            clips.append(clip)
            actions.append(act)
    if not clips:
        sys.exit(f"no clip of {args.frames} frames in {len(args.videos)} video(s)")
    dims = {a.shape[1] for a in actions}
    if len(dims) != 1:
        sys.exit(f"videos disagree on the action dimension: {sorted(dims)}")
    frames = np.stack(clips)
    with h5py.File(args.out, "w") as f:
        # One clip per chunk, each with HDF5's Fletcher-32 checksum: reel verifies it on
        # every read, so damage to a clip is an error naming it.
        f.create_dataset("frames", data=frames.astype(np.uint8), chunks=(1,) + frames.shape[1:], fletcher32=True)
        acts = np.stack(actions).astype(np.float32)
        if acts.shape[2]:
            f.create_dataset("actions", data=acts, chunks=(1,) + acts.shape[1:], fletcher32=True)
        else:
            f.create_dataset("actions", data=acts)
        f.attrs["schema_version"] = np.int32(1)
        f.attrs["fps"] = float(args.fps)
        f.attrs["provenance"] = "converted by reel scripts/convert_videos.py from " + ", ".join(args.videos)
        f.attrs["content_sha256"] = content_sha256(frames.astype(np.uint8), acts)
    print(f"wrote {len(clips)} clips {frames.shape[1:]} to {args.out}")


if __name__ == "__main__":
    main()
