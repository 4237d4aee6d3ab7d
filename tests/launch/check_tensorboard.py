#!/usr/bin/env python3
"""Checks TensorBoard event files against the metrics.jsonl they were written from, read
back with TensorBoard's own reader (EventAccumulator), keeping every event it finds
(purge_orphaned_data=False, so a step written twice shows up as twice):
  - every number of every record (lists and objects by index and key) is a scalar at the
    record's step with the record's value (float32), under a tag that ends in its key
    (eval_loss: eval/loss; comm_bytes[_internode]/NAME: comm/bytes[_internode]/NAME); the
    figures the docs name are under their documented tags;
  - no scalar without a record behind it, no (tag, step) twice, one event file;
  - the shares comm/exposed_share and perf/data_wait_share are the times' ratios.
Usage: check_tensorboard.py METRICS.jsonl EVENTS_DIR [--eval-steps 4,8,12]
Prints "tensorboard events: N steps, M scalars, equal" or fails with the first difference.
"""
import argparse
import glob
import json
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator as ea

DOCUMENTED = {"loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm", "eval_loss": "eval/loss",
              "tokens_per_s": "perf/tokens_per_s", "mfu": "perf/mfu", "hfu": "perf/hfu",
              "step_time_s": "perf/step_time_s", "comm_exposed_s": "perf/comm_exposed_s",
              "data_wait_s": "perf/data_wait_s", "rss_bytes": "memory/rss_bytes",
              "device_peak_bytes": "memory/device_peak_bytes", "rollout_ratio": "eval/rollout_ratio",
              "agent_err_ratio": "eval/agent_err_ratio", "action_gain": "eval/action_gain"}


def leaves(key, value):
    """(path, number) for every number in value; path is key, key/index or key/name."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        yield key, float(value)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(f"{key}/{i}", v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(f"{key}/{k}", v)


def close(a, b):
    return abs(a - b) <= 1e-6 * abs(b) + 1e-12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("metrics")
    ap.add_argument("events")
    ap.add_argument("--eval-steps", default="")
    a = ap.parse_args()
    records = [json.loads(line) for line in open(a.metrics) if line.strip()]
    files = glob.glob(os.path.join(a.events, "events.out.tfevents.*"))
    assert len(files) == 1, f"{len(files)} event files in {a.events}, expected 1: {files}"
    acc = ea.EventAccumulator(a.events, size_guidance={ea.SCALARS: 0}, purge_orphaned_data=False)
    acc.Reload()
    events = {}  # (tag, step) -> value
    for tag in acc.Tags()["scalars"]:
        for e in acc.Scalars(tag):
            assert (tag, e.step) not in events, f"{tag} at step {e.step} is written twice"
            events[(tag, e.step)] = e.value
    used = set()
    for r in records:
        step = r["step"]
        for key, value in r.items():
            if key == "step":
                continue
            for path, number in leaves(key, value):
                if not math.isfinite(number):
                    continue
                suffix = "/" + path
                if path == "eval_loss":
                    suffix = "eval/loss"
                for key_, tag_ in (("comm_bytes_internode/", "comm/bytes_internode/"), ("comm_bytes/", "comm/bytes/")):
                    if path.startswith(key_):  # bytes per communicator.call
                        suffix = tag_ + path[len(key_):]
                        break
                tags = [t for (t, s) in events if s == step and t.endswith(suffix) and close(events[(t, s)], number)]
                assert tags, f"step {step}: {path} = {number!r} is no scalar at that step"
                if path in DOCUMENTED:
                    assert DOCUMENTED[path] in tags, f"step {step}: {path} is not under {DOCUMENTED[path]} ({tags})"
                used.update((t, step) for t in tags)
        for key, tag in (("comm_exposed_s", "comm/exposed_share"), ("data_wait_s", "perf/data_wait_share")):
            want = r[key] / r["step_time_s"]
            got = events.get((tag, step))
            assert got is not None and close(got, want), f"step {step}: {tag} = {got}, expected {want}"
            used.add((tag, step))
    extra = sorted(set(events) - used, key=lambda ts: (ts[1], ts[0]))
    assert not extra, f"scalars without a record behind them: {extra[:5]}"
    loss_steps = [e.step for e in acc.Scalars("train/loss")]
    assert loss_steps == [r["step"] for r in records], f"train/loss steps {loss_steps}"
    if a.eval_steps:
        want = [int(s) for s in a.eval_steps.split(",")]
        for tag in ("eval/loss", "eval/rollout_ratio", "eval/agent_err_ratio"):
            got = [e.step for e in acc.Scalars(tag)]
            assert got == want, f"{tag} at steps {got}, expected {want}"
    print(f"tensorboard events: {len(records)} steps, {len(events)} scalars, equal")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        sys.exit(f"FAIL: {e}")
