#!/usr/bin/env python3
"""Draws a reel trace (Chrome trace / Perfetto JSON, as `reel train --log.trace` writes it)
as a timeline picture: one row per rank and thread, one bar per span (a span nested in
another one level below it), coloured by category.

  .venv/bin/python scripts/draw_trace.py RUN_DIR/trace/trace.json --out trace.png [--step N]

--step N draws only the time of that step (from the first to the last span whose
args.step is N, over every rank); by default the whole trace. For looking at a trace interactively, open the JSON
in https://ui.perfetto.dev or chrome://tracing; this is for pictures in documents.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    names = {}  # (pid, tid) -> row label; pid -> process label
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            names[e["pid"]] = e["args"]["name"]
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[(e["pid"], e["tid"])] = e["args"]["name"]
    spans = [e for e in events if e.get("ph") == "X"]
    return spans, names


def window(spans, step):
    """[t0, t1] of step `step` (its spans on every rank), or of everything."""
    if step is None:
        return min(s["ts"] for s in spans), max(s["ts"] + s["dur"] for s in spans)
    mine = [s for s in spans if s.get("args", {}).get("step") == step]
    if not mine:
        sys.exit(f"draw_trace: no span of step {step} in the trace")
    return min(s["ts"] for s in mine), max(s["ts"] + s["dur"] for s in mine)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--out", required=True)
    ap.add_argument("--step", type=int)
    a = ap.parse_args()
    spans, names = load(a.trace)
    if not spans:
        sys.exit("draw_trace: the trace has no spans")
    t0, t1 = window(spans, a.step)
    spans = [s for s in spans if s["ts"] < t1 and s["ts"] + s["dur"] > t0]
    rows = sorted({(s["pid"], s["tid"]) for s in spans})
    cats = sorted({s.get("cat", "") for s in spans})
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(cats)}
    # Each row is a flame graph: a span nested in another is drawn one level below it.
    placed, depths = [], {}
    for row in rows:
        stack = []  # ends of the enclosing spans
        for s in sorted((s for s in spans if (s["pid"], s["tid"]) == row), key=lambda s: (s["ts"], -s["dur"])):
            while stack and stack[-1] <= s["ts"]:
                stack.pop()
            placed.append((row, len(stack), s))
            depths[row] = max(depths.get(row, 0), len(stack) + 1)
            stack.append(s["ts"] + s["dur"])
    base, y = {}, 0.0
    for row in rows:
        base[row] = y
        y += depths[row] + 0.6  # a gap between rows
    fig, ax = plt.subplots(figsize=(14, 0.28 * y + 1.5))
    for row, depth, s in placed:
        start, end = max(s["ts"], t0), min(s["ts"] + s["dur"], t1)
        ax.barh(base[row] + depth, (end - start) / 1e3, left=(start - t0) / 1e3, height=0.9,
                color=colours[s.get("cat", "")], edgecolor="black", linewidth=0.2)
    labels = [f"{names.get(r[0], f'pid {r[0]}')} / {names.get(r, f'tid {r[1]}')}" for r in rows]
    ax.set_yticks([base[r] + (depths[r] - 1) / 2 for r in rows], labels, fontsize=8)
    ax.set_ylim(y, -1)
    ax.set_xlabel("ms" + (f" from the start of step {a.step}" if a.step is not None else " from the first span"))
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in cats], labels=cats, fontsize=8,
              loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"draw_trace: {len(spans)} spans on {len(rows)} rows -> {a.out}")


if __name__ == "__main__":
    main()
