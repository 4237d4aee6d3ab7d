#!/usr/bin/env python3
"""reel plan against measured runs: the same configuration is planned (`reel plan --given
--cluster cpu`) and trained (`mpirun reel train`) at several layouts on this machine.

Compared per layout, on the last step of the run, rank 0:
  communication bytes per step, by group and call  -- must be equal (exact)
  persistent memory (shards, AdamW state)         -- within 5%
  peak memory above the process's start, step time -- reported with their ratio

  plan_validate.py REEL [--steps N] [--table FILE|-]   (-: the table on stdout, the rest on stderr)

Without --table it is the test (tests/CMakeLists.txt: plan.validate): exits 1 naming each
mismatch. With --table it also writes the markdown comparison (docs/plan.md's table).
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile

# (name, ranks, options shared by reel plan and reel train)
LAYOUTS = [
    ("1 rank", 1, []),
    ("dp 2, 2 micro-batches", 2, ["--data.micro_batches", "2"]),
    ("dp 2, 2 micro-batches unsharded", 2, ["--data.micro_batches", "2", "--parallel.grad_accumulation", "unsharded"]),
    ("dp 4 HSDP 2x2, 2 micro-batches", 4, ["--parallel.shard_group", "2", "--data.micro_batches", "2"]),
    ("sp 2 Ulysses, ac full", 2, ["--parallel.sp", "2", "--parallel.activation_checkpoint", "full"]),
    ("sp 2 ring", 2, ["--parallel.sp", "2", "--parallel.sp_mode", "ring"]),
    ("sp 4 hybrid 2x2", 4, ["--parallel.sp", "4", "--parallel.sp_mode", "hybrid", "--parallel.ulysses", "2"]),
    ("dp 4 HSDP 2x2, ac every 2", 4, ["--parallel.shard_group", "2", "--parallel.activation_checkpoint", "every"]),
    ("dp 2 x sp 2 ring, no reshard", 4, ["--parallel.sp", "2", "--parallel.sp_mode", "ring",
                                          "--parallel.reshard_after_forward", "false"]),
    ("wide (D 256, 6 blocks), 1 rank", 1, ["--model.dim", "256", "--model.depth", "6"]),
    ("wide, dp 2", 2, ["--model.dim", "256", "--model.depth", "6"]),
    ("wide, sp 2 ring, ac full", 2, ["--model.dim", "256", "--model.depth", "6", "--parallel.sp", "2",
                                     "--parallel.sp_mode", "ring", "--parallel.activation_checkpoint", "full"]),
]
COMMON = ["--data.global_batch", "8"]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def measure(reel, world, ranks, opts, steps, rundir):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks), reel, "train", "--data.path", world,
         "--run.dir", rundir, "--run.steps", str(steps), "--data.eval_clips", "0", "--run.plot", "false",
         "--run.log_every", "1000", "--dist.backend", "mpi", "--run.overwrite", "true", *COMMON, *opts], env=env)
    return [json.loads(l) for l in open(os.path.join(rundir, "metrics.jsonl"))]


def plan(reel, ranks, opts):
    out = run([reel, "plan", "--given", "--cluster", "cpu", "--gpus", str(ranks), "--gpus-per-node", str(ranks),
               "--json", *COMMON, *opts])
    layouts = json.loads(out)["layouts"]
    assert len(layouts) == 1 and "comm_bytes" in layouts[0], f"reel plan --given: {layouts}"
    return layouts[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reel")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--table")
    a = ap.parse_args()
    failures, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        world = os.path.join(tmp, "world.h5")
        run([a.reel, "data", "--out", world, "--clips", "24", "--seed", "1"])
        for i, (name, ranks, opts) in enumerate(LAYOUTS):
            lines = measure(a.reel, world, ranks, opts, a.steps, os.path.join(tmp, f"run{i}"))
            p = plan(a.reel, ranks, opts)
            last = lines[-1]
            measured, predicted = last["comm_bytes"], p["comm_bytes"]
            if measured != predicted:
                failures.append(f"{name}: communication bytes per step measured {measured}, predicted {predicted}")
            pers_m, pers_p = last["persistent_bytes"], p["memory_bytes"]["persistent"]
            if abs(pers_p - pers_m) > 0.05 * pers_m:
                failures.append(f"{name}: persistent memory measured {pers_m}, predicted {pers_p} (> 5% apart)")
            mem = p["memory_bytes"]
            peak_p = mem["total"] - mem["reserve"]
            peak_m = max(l["rss_peak_bytes"] for l in lines) - last["rss_start_bytes"]
            times = [l["step_time_s"] for l in lines[1:]] or [lines[0]["step_time_s"]]
            rows.append((name, ranks, sum(measured.values()), sum(predicted.values()), measured == predicted,
                         pers_m, pers_p, peak_m, peak_p, statistics.median(times), p["time_s"]["step"]))
            print(f"{name}: bytes {'equal' if measured == predicted else 'DIFFER'} ({sum(measured.values())}); "
                  f"persistent {pers_m} vs {pers_p:.0f}; peak above start {peak_m / 2**20:.1f} vs {peak_p / 2**20:.1f} MiB; "
                  f"step {statistics.median(times) * 1e3:.1f} vs {p['time_s']['step'] * 1e3:.1f} ms", file=sys.stderr,
                  flush=True)
    if a.table:
        with (contextlib.nullcontext(sys.stdout) if a.table == "-" else open(a.table, "w")) as f:
            f.write("| layout | ranks | comm bytes/step measured | predicted | persistent measured (KiB) | predicted | "
                    "peak above start measured (MiB) | predicted | ratio | step measured (ms) | predicted | ratio |\n")
            f.write("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
            for (name, ranks, bm, bp, eq, pm, pp, km, kp, tm, tp) in rows:
                f.write(f"| {name} | {ranks} | {bm:,} | {bp:,}{'' if eq else ' (differs)'} | {pm / 1024:.1f} | "
                        f"{pp / 1024:.1f} | {km / 2**20:.1f} | {kp / 2**20:.1f} | {kp / km if km else 0:.2f} | "
                        f"{tm * 1e3:.1f} | {tp * 1e3:.1f} | {tp / tm:.2f} |\n")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print(f"reel plan against {len(LAYOUTS)} measured layouts: bytes exact, persistent memory within 5%: ok",
              file=sys.stderr if a.table == "-" else sys.stdout)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
