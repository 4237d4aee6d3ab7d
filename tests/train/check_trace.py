#!/usr/bin/env python3
"""Checks a run's log.trace output (dist/trace.hpp) and prints "trace ok: ..." or fails.

Usage: check_trace.py RUN_DIR RANKS FIRST LAST [--recompute] [--align-ms MS]
  - trace/trace.json and trace/rank<R>.json are valid JSON in the Trace Event Format;
  - one track (pid) per rank, named "rank R (host)";
  - on each (pid, tid) the complete spans nest: none overlaps another partially;
  - every span starts in a traced step (args.step in FIRST..LAST) and train.step spans
    are exactly those steps, on every rank;
  - on each rank, every collective the traffic counters counted while tracing is traced
    exactly once with the same bytes: per "label.op" the spans' bytes sum to the counter,
    and no collective (its "what": op #seq on label) appears twice;
  - the first traced barrier on the world communicator ends at the same instant on every
    rank, within --align-ms on the common clock (the ranks' clocks may be skewed:
    REEL_TRACE_TEST_SKEW_US);
  - every FSDP unit has its forward and backward spans in each traced step (and, with
    --recompute, every block its recomputation); the comm.wait spans exist.
"""
import collections
import json
import sys

KNOWN = {"train.step", "train.data", "train.backward", "optim.clip", "optim.adamw", "fsdp.forward",
         "fsdp.backward", "fsdp.recompute", "wait", "checkpoint.snapshot", "checkpoint.save",
         "checkpoint.write", "checkpoint.commit", "all_reduce", "all_gather", "reduce_scatter", "all_to_all",
         "all_to_all_v", "broadcast", "send", "recv", "sendrecv", "barrier"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def ns(x):
    return round(float(x) * 1000)


def check_nesting(spans, where):
    # Sorted by start, longest first: each span must end inside every open one it starts in.
    spans = sorted(spans, key=lambda e: (ns(e["ts"]), -ns(e["dur"])))
    stack = []
    for e in spans:
        start, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        while stack and stack[-1][1] <= start:
            stack.pop()
        if stack and end > stack[-1][1]:
            fail(f"{where}: {e['name']} [{start}, {end}) ns overlaps {stack[-1][2]} "
                 f"[{stack[-1][0]}, {stack[-1][1]}) partially")
        stack.append((start, end, e["name"]))


def main():
    args = sys.argv[1:]
    run, ranks, first, last = args[0], int(args[1]), int(args[2]), int(args[3])
    recompute = "--recompute" in args
    align_ms = float(args[args.index("--align-ms") + 1]) if "--align-ms" in args else 5.0
    with open(f"{run}/trace/trace.json") as f:
        merged = json.load(f)
    for r in range(ranks):
        with open(f"{run}/trace/rank{r}.json") as f:
            own = json.load(f)
        if {e["pid"] for e in own["traceEvents"]} != {r}:
            fail(f"rank{r}.json holds other pids")
    events = merged["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    if sorted(names) != list(range(ranks)):
        fail(f"tracks {sorted(names)}, expected one per rank 0..{ranks - 1}")
    for pid, name in names.items():
        if not name.startswith(f"rank {pid} (") or not name.endswith(")"):
            fail(f"track {pid} is named '{name}'")
    spans = [e for e in events if e["ph"] == "X"]
    by_thread = collections.defaultdict(list)
    for e in spans:
        if e["name"] not in KNOWN:
            fail(f"undocumented span name {e['name']}")
        if not first <= e["args"]["step"] <= last:
            fail(f"rank {e['pid']}: {e['name']} recorded in step {e['args']['step']}, outside {first}-{last}")
        by_thread[(e["pid"], e["tid"])].append(e)
    for (pid, tid), s in by_thread.items():
        check_nesting(s, f"rank {pid} thread {tid}")
    meta = {m["rank"]: m for m in merged["metadata"]["ranks"]}
    barrier_ends = {}
    for r in range(ranks):
        mine = [e for e in spans if e["pid"] == r]
        steps = sorted(e["args"]["step"] for e in mine if e["name"] == "train.step")
        if steps != list(range(first, last + 1)):
            fail(f"rank {r}: train.step spans for steps {steps}")
        comm = [e for e in mine if e["cat"] == "comm"]
        traced = collections.Counter()
        for e in comm:
            traced[e["args"]["comm"] + "." + e["name"]] += e["args"]["bytes"]
        traced = {k: v for k, v in traced.items() if v}
        counted = meta[r]["traffic_bytes"]
        if traced != counted:
            fail(f"rank {r}: traced bytes {traced} differ from the traffic counters {counted}")
        whats = collections.Counter(e["args"]["what"] for e in comm)
        twice = [w for w, n in whats.items() if n > 1]
        if twice:
            fail(f"rank {r}: collectives traced more than once: {twice[:3]}")
        if not any(e["cat"] == "comm.wait" for e in mine):
            fail(f"rank {r}: no wait spans")
        barriers = sorted((ns(e["ts"]) + ns(e["dur"]) for e in comm
                           if e["name"] == "barrier" and e["args"]["comm"] == "world"))
        if not barriers:
            fail(f"rank {r}: no traced barrier on world")
        barrier_ends[r] = barriers[0]
        for step in range(first, last + 1):
            fwd = {e["args"]["unit"] for e in mine if e["name"] == "fsdp.forward" and e["args"]["step"] == step}
            bwd = {e["args"]["unit"] for e in mine if e["name"] == "fsdp.backward" and e["args"]["step"] == step}
            if "root" not in fwd or fwd != bwd:
                fail(f"rank {r} step {step}: forward spans of units {sorted(fwd)}, backward of {sorted(bwd)}")
            if recompute:
                blocks = {f"block{e['args']['block']}" for e in mine
                          if e["name"] == "fsdp.recompute" and e["args"]["step"] == step}
                if blocks != fwd - {"root"}:
                    fail(f"rank {r} step {step}: recomputed blocks {sorted(blocks)}")
    spread_ms = (max(barrier_ends.values()) - min(barrier_ends.values())) / 1e6
    if spread_ms > align_ms:
        fail(f"the traced barrier's exits differ by {spread_ms:.3f} ms across ranks on the common clock "
             f"(bound {align_ms} ms): {barrier_ends}")
    offsets = [meta[r]["clock_offset_us"] for r in range(ranks)]
    print(f"trace ok: {ranks} ranks, {len(spans)} spans, {sum(1 for e in spans if e['cat'] == 'comm')} "
          f"collectives, barrier exits within {spread_ms:.3f} ms, clock offsets {offsets} us")


if __name__ == "__main__":
    main()
