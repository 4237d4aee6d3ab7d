#!/usr/bin/env python3
"""Writes a reel run's RUN_DIR/metrics.jsonl as TensorBoard scalars (RUN_DIR/tensorboard).

Run by `reel tensorboard RUN_DIR` (once, or --follow), and by rank 0 of
`reel train --log.tensorboard` as a child that tails metrics.jsonl while the run trains
(--until-stdin-closes: it stops when reel closes its stdin, or when reel dies).
The event files are written by the tensorboard package's own writer (EventFileWriter, the
one torch.utils.tensorboard wraps) from its protocol buffers, never by hand: one event per
step holding all of the step's scalars, at the record's "time" if it has one.

Tags (one scalar per number of a record, at the record's step; null values are skipped):
  train/   loss, lr, grad_norm, skipped (0/1)
  eval/    loss (metrics' eval_loss) and the world-model figures rollout_*, agent_err_*,
           action_* at evaluations; a list becomes <tag>/<index>
  perf/    tokens_per_s, mfu, hfu, step_time_s, compute_s, comm_exposed_s, data_wait_s,
           data_wait_share (data_wait_s / step_time_s), checkpoint_*, any other number
  memory/  every *_bytes figure but checkpoint_bytes: rss, its peak and start, persistent
           bytes, the device's peak
  comm/    exposed_share (comm_exposed_s / step_time_s), bytes/<communicator.call> and
           bytes_internode/<communicator.call> from comm_bytes, comm_bytes_internode

No step is ever written twice: a conversion removes the folder's old event files and
writes every step afresh into one new file that starts with a session start at the first
step (what SummaryWriter's purge_step writes), so a TensorBoard that is already showing
the folder drops what it read before (a resumed
run cuts metrics.jsonl back to its checkpoint's step; the steps it dropped disappear here
too). While following, a metrics.jsonl replaced under the follower (a resume) starts the
conversion afresh the same way. One conversion per folder at a time (a lock file).
Usage: metrics_to_tensorboard.py RUN_DIR [--out DIR] [--follow [--until-stdin-closes]] [--interval S]
"""
import argparse
import fcntl
import glob
import json
import math
import os
import select
import signal
import sys
import time

TRAIN = {"loss", "lr", "grad_norm", "skipped"}
EVAL_PREFIXES = ("rollout_", "agent_err_", "action_")
COMM = {"comm_bytes": "comm/bytes", "comm_bytes_internode": "comm/bytes_internode"}


def fail(message):
    sys.exit(f"metrics_to_tensorboard: {message}")


def tag_of(key):
    if key in TRAIN:
        return "train/" + key
    if key == "eval_loss":
        return "eval/loss"
    if key.startswith(EVAL_PREFIXES):
        return "eval/" + key
    if key in COMM:
        return COMM[key]
    if key.endswith("_bytes") and not key.startswith("checkpoint_"):
        return "memory/" + key
    return "perf/" + key


def numbers(tag, value):
    """(tag, float) for value: a number, a bool (0/1), a list or an object of them."""
    if isinstance(value, bool):
        yield tag, float(value)
    elif isinstance(value, (int, float)):
        yield tag, float(value)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(f"{tag}/{i}", v)
    elif isinstance(value, dict):
        for k, v in sorted(value.items()):
            yield from numbers(f"{tag}/{k}", v)
    # null (a non-finite value in metrics.jsonl) and text: no point


def scalars(record):
    """Every (tag, value) of one metrics.jsonl record, the shares derived from its times."""
    out = []
    for key, value in record.items():
        if key not in ("step", "time"):
            out.extend(numbers(tag_of(key), value))
    step_s = record.get("step_time_s")
    if isinstance(step_s, (int, float)) and step_s > 0:
        for key, tag in (("comm_exposed_s", "comm/exposed_share"), ("data_wait_s", "perf/data_wait_share")):
            if isinstance(record.get(key), (int, float)):
                out.append((tag, record[key] / step_s))
    return out


class Events:
    """One conversion into `out`: the old event files removed, one file opened at the first step."""

    def __init__(self, out, tb):
        self.out, self.tb = out, tb
        self.writer, self.last_step = None, None
        for old in glob.glob(os.path.join(out, "events.out.tfevents.*")):
            os.remove(old)

    def add(self, record):
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return
        if self.last_step is not None and step <= self.last_step:
            print(f"metrics_to_tensorboard: step {step} after step {self.last_step}: skipped", file=sys.stderr)
            return
        wall = record["time"] if isinstance(record.get("time"), (int, float)) else time.time()
        if self.writer is None:
            self.writer = self.tb.EventFileWriter(self.out, max_queue_size=100, flush_secs=30)
            # A session start at the first step: a TensorBoard that read this folder's old
            # files drops what it holds at steps >= step (its "purge"), then reads this file.
            start = self.tb.SessionLog(status=self.tb.SessionLog.START)
            self.writer.add_event(self.tb.Event(wall_time=wall, step=step, session_log=start))
        values = [self.tb.Summary.Value(tag=tag, simple_value=v) for tag, v in scalars(record) if math.isfinite(v)]
        self.writer.add_event(self.tb.Event(wall_time=wall, step=step, summary=self.tb.Summary(value=values)))
        self.last_step = step

    def close(self):
        if self.writer is not None:
            self.writer.close()  # flushes


class Tail:
    """Whole new lines of metrics.jsonl, noticing when the file is replaced (a resume)."""

    def __init__(self, path):
        self.path, self.inode, self.offset, self.line_no = path, None, 0, 0

    def read(self, chunk=8 << 20):
        """(replaced, records, bytes): up to `chunk` bytes of whole lines (a long file goes in
        pieces; 0 bytes: nothing new); replaced says the file is a new one, read from its start."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False, [], 0
        replaced = self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset)
        if replaced or self.inode is None:
            self.inode, self.offset, self.line_no = st.st_ino, 0, 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(chunk)
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(whole)
        records = []
        for line in whole.splitlines():
            self.line_no += 1
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"metrics_to_tensorboard: {self.path} line {self.line_no} is not JSON ({e}): skipped",
                      file=sys.stderr)
        return replaced, records, len(whole)


def drain(tail, events, make_events):
    """Converts every whole line metrics.jsonl has now; returns the conversion (a new one
    when the file was replaced: the run resumed, its kept steps and what follows afresh)."""
    while True:
        replaced, records, n = tail.read()
        if replaced:
            events.close()
            events = make_events()
        for r in records:
            events.add(r)
        if n == 0:
            return events


def lock(out):
    """Holds out/.lock for this process's life: a second conversion into out is refused."""
    f = open(os.path.join(out, ".lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fail(f"{out} is being written by another conversion (a training run with --log.tensorboard, or "
             f"reel tensorboard --follow); wait for it to end, or write elsewhere with --out")
    return f


def stdin_closed(timeout):
    """Waits up to timeout seconds; True once stdin has reached its end (the parent closed it or died)."""
    ready, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
    return bool(ready) and os.read(sys.stdin.fileno(), 4096) == b""


def follow(tail, events, make_events, interval, until_stdin_closes):
    stop = []
    if until_stdin_closes:
        # Signals meant for reel (Ctrl-C to the terminal, Slurm's SIGTERM/SIGUSR1 before a time
        # limit) reach this child too: reel finishes its step and checkpoint first, so the end
        # comes as stdin's end, and the steps up to the checkpoint get written.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: stop.append(True))
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while True:
        done = stdin_closed(interval) if until_stdin_closes else bool(stop)
        events = drain(tail, events, make_events)
        if events.writer is not None:
            events.writer.flush()  # live: TensorBoard sees each step within `interval`
        if done or stop:
            return events
        if not until_stdin_closes:
            select.select([], [], [], interval)


def writer_module():
    """TensorBoard's own event-file writer and protocol buffers (the tensorboard package: 0.3 s
    and 40 MB to load, where torch.utils.tensorboard, which wraps the same writer, takes 2 s
    and 600 MB of the training node's memory)."""
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    return argparse.Namespace(Event=Event, SessionLog=SessionLog, Summary=Summary, EventFileWriter=EventFileWriter)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", help="folder of the event files (default RUN_DIR/tensorboard)")
    ap.add_argument("--follow", action="store_true", help="keep converting new steps until Ctrl-C")
    ap.add_argument("--until-stdin-closes", action="store_true", help="with --follow: stop when stdin ends")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between reads when following")
    a = ap.parse_args()
    path = os.path.join(a.run_dir, "metrics.jsonl")
    if not a.follow and not os.path.isfile(path):
        fail(f"{path}: no such file (is {a.run_dir} a reel run directory? a run writes it after its first step)")
    try:
        tb = writer_module()
    except ImportError as e:
        fail(f"{e}: TensorBoard's writer is missing from {sys.executable}; scripts/setup.sh installs it "
             f"(or: {sys.executable} -m pip install tensorboard)")
    out = a.out or os.path.join(a.run_dir, "tensorboard")
    os.makedirs(out, exist_ok=True)
    held = lock(out)
    tail = Tail(path)
    make_events = lambda: Events(out, tb)  # noqa: E731
    events = make_events()
    if a.follow:
        events = follow(tail, events, make_events, a.interval, a.until_stdin_closes)
    else:
        events = drain(tail, events, make_events)
        if events.last_step is None:
            fail(f"{path} holds no steps yet")
    events.close()
    held.close()
    if not a.until_stdin_closes:
        print(f"metrics_to_tensorboard: wrote steps up to {events.last_step} to {out} (tensorboard --logdir {out})")


if __name__ == "__main__":
    main()
