#!/usr/bin/env python3
"""Draws a reel run's curves from RUN_DIR/metrics.jsonl as one PNG (RUN_DIR/curves.png).

Panels: training and held-out loss; the world-model rollout ratios against copying the
last frame (MSE, agent position error) and the action gain; the learning rate; tokens/s.
`reel train` runs this at the end of a run, `reel plot RUN_DIR` on demand.
Usage: plot_run.py RUN_DIR [--out FILE.png]
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"plot_run: {path} line {n} is not JSON: {e}")
    return records


def series(records, key):
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", help="PNG file (default RUN_DIR/curves.png)")
    a = ap.parse_args()
    path = os.path.join(a.run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit(f"plot_run: {path}: no such file (is {a.run_dir} a reel run directory?)")
    records = read(path)
    if not records:
        sys.exit(f"plot_run: {path} holds no records yet")
    out = a.out or os.path.join(a.run_dir, "curves.png")
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    loss = ax[0][0]
    loss.plot(*series(records, "loss"), lw=0.8, alpha=0.7, label="training loss")
    loss.plot(*series(records, "eval_loss"), "o-", ms=3, label="held-out loss")
    loss.set_yscale("log")
    loss.set_title("flow-matching loss")
    roll = ax[0][1]
    for key, label in [("rollout_ratio", "rollout MSE / copy-last"), ("agent_err_ratio", "agent error / copy-last"),
                       ("action_gain", "action gain (1: as physics)")]:
        x, y = series(records, key)
        if x:
            roll.plot(x, y, "o-", ms=3, label=label)
    roll.axhline(1.0, color="grey", lw=0.6, ls="--")
    roll.set_title("world model on held-out clips")
    ax[1][0].plot(*series(records, "lr"), color="tab:purple")
    ax[1][0].set_title("learning rate")
    ax[1][1].plot(*series(records, "tokens_per_s"), lw=0.8, color="tab:green")
    ax[1][1].set_title("tokens / s")
    for a_ in ax.flat:
        a_.set_xlabel("step")
        a_.grid(alpha=0.3)
        if a_.get_legend_handles_labels()[0]:
            a_.legend(fontsize=8)
    fig.suptitle(os.path.abspath(a.run_dir), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"plot_run: wrote {out}")


if __name__ == "__main__":
    main()
