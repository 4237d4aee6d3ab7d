#!/usr/bin/env python3
"""PyTorch FSDP2 baseline for reel's 2-rank training step: bench/torch_eager.py's model and
step (the "tiny" preset), with torch.distributed.fsdp.fully_shard on every block and then
the root, over the gloo backend, one thread per rank. Global batch split over the ranks.

  .venv/bin/python bench/torch_fsdp2.py --ranks 2 --batch 16 --steps 30 --warmup 10 [--json]

Compare with: mpirun -np 2 reel train --config configs/tiny.ini --dist.threads 1
--data.global_batch 16 --parallel.reshard_after_forward true --run.steps 40 --log.dir DIR
--run.log_every 1 (the slowest rank's "step X ms" per step, median after the first 10;
bench/vs_torch.sh does this). Both reshard after forward (ZeRO-3) and reduce gradients
in fp32. PyTorch's best CPU settings by default: AdamW fused=True (one kernel over the
DTensor shards; works on CPU in torch 2.11) and clip_grad_norm_(foreach=True).

Timing: each step is the slowest rank's (an all-reduce MAX after it, outside the timing),
the median of --steps steps after --warmup. Then --comm-reps times the step's collectives
alone on the same gloo group, at FSDP2's sizes: per step, with the blocks resharded after
forward and the root not (FSDP2's default for the root), the root's all-gather once, each
block's twice (forward, backward), one reduce-scatter per unit and the clip's all-reduce.
Reported as comm_ms: the transport's share of the step, against reel's comm over MPI.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_eager as te  # noqa: E402


def worker(rank, args, port, queue):
    try:
        run_rank(rank, args, port, queue)
    except BaseException:
        import traceback
        traceback.print_exc()
        raise


def slowest(seconds):  # the slowest rank's seconds (every rank calls it)
    t = torch.tensor([seconds], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def train(model, opt, args, rank):  # the timed steps' seconds, the slowest rank's each
    b = args.batch // args.ranks
    data = [(torch.randint(0, 256, (b, te.FRAMES, te.H, te.W, te.CH), dtype=torch.uint8),
             torch.rand(b, te.FRAMES, te.ACT) * 2 - 1) for _ in range(4)]
    total, times = args.warmup + args.steps, []
    for step in range(total):
        frames, actions = data[step % len(data)]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        first = step * args.batch + rank * b
        x_t, t, target, weight = te.flow_batch(te.patchify(frames), range(first, first + b), step, args.seed)
        loss = te.flow_loss(model(x_t, t, actions), target, weight, b)
        loss.backward()
        te.clip(model.parameters(), args.clip)
        for group in opt.param_groups:
            group["lr"] = te.lr_at(step, total)
        opt.step()
        loss.item()
        elapsed = slowest(time.perf_counter() - start)  # outside the timing
        times += [elapsed] if step >= args.warmup else []
    return times


def step_collectives(unit_numels, ranks):
    """One step's collectives at FSDP2's sizes: [(kind, numel of the full buffer)].
    unit_numels: [root, block0, ...]; each fp32, shard = numel / ranks (no padding here:
    every parameter's dim 0 divides by 2 and 4)."""
    root, blocks = unit_numels[0], unit_numels[1:]
    calls = [("all_gather", root)] + [("all_gather", n) for n in blocks]  # forward
    calls += [("all_gather", n) for n in reversed(blocks)]                 # backward (resharded)
    calls += [("reduce_scatter", n) for n in reversed(blocks)] + [("reduce_scatter", root)]
    assert all(n % ranks == 0 for _, n in calls), "a unit that does not split evenly: FSDP2 would pad it"
    return calls + [("all_reduce", 1)]  # the clip's global norm


def time_collectives(calls, ranks, reps):  # median over reps of the slowest rank's seconds for all of calls
    bufs = [(kind, torch.zeros(n // ranks), torch.zeros(n)) for kind, n in calls]
    times = []
    for rep in range(reps + 2):  # 2 untimed rounds first
        dist.barrier()
        start = time.perf_counter()
        for kind, shard, full in bufs:
            if kind == "all_gather":
                dist.all_gather_into_tensor(full, shard)
            elif kind == "reduce_scatter":
                dist.reduce_scatter_tensor(shard, full)
            else:
                dist.all_reduce(full)
        elapsed = slowest(time.perf_counter() - start)
        times += [elapsed] if rep >= 2 else []
    return statistics.median(times)


def run_rank(rank, args, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    from torch.distributed.fsdp import fully_shard
    torch.manual_seed(args.seed)
    model = te.WorldModel(args.seed)
    numels = [sum(p.numel() for p in block.parameters()) for block in model.blocks()]
    numels.insert(0, sum(p.numel() for p in model.parameters()) - sum(numels))  # the root's own
    for block in model.blocks():
        fully_shard(block)
    fully_shard(model)
    opt = te.make_adamw(model.parameters(), args.adamw)
    times = train(model, opt, args, rank)
    comm = time_collectives(step_collectives(numels, args.ranks), args.ranks, args.comm_reps) if args.comm_reps else None
    if rank == 0:
        queue.put((times, comm))
    # Every rank is done before any leaves: a rank that tears gloo down while rank 0's
    # store goes away can abort in gloo's threads. Nothing is left to clean up after this.
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default in (("ranks", 2), ("threads", 1), ("steps", 30), ("warmup", 10), ("batch", 16), ("seed", 0),
                          ("port", 29533), ("comm-reps", 20)):
        ap.add_argument("--" + flag, type=int, default=default)
    ap.add_argument("--adamw", choices=["default", "foreach", "fused"], default="fused",
                    help="torch.optim.AdamW implementation (default: PyTorch's choice, a per-tensor loop on CPU)")
    ap.add_argument("--clip", choices=["default", "foreach"], default="foreach", help="clip_grad_norm_'s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(worker, args=(args, args.port, queue), nprocs=args.ranks, start_method="spawn")
    times, comm = queue.get()
    ms = 1e3 * statistics.median(times)
    out = {"impl": "torch-fsdp2-gloo", "torch": torch.__version__, "ranks": args.ranks, "threads": args.threads,
           "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "adamw": args.adamw, "clip": args.clip,
           "median_step_ms": round(ms, 2), "tokens_per_s": round(args.batch * te.L / (ms / 1e3), 1),
           "comm_ms": None if comm is None else round(1e3 * comm, 2)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"FSDP2 (fully_shard, gloo, torch {out['torch']}, AdamW {args.adamw}, clip {args.clip}): "
              f"{args.ranks} ranks x {args.threads} thread(s), global batch {args.batch}: median step {ms:.1f} ms "
              f"(slowest rank, {args.steps} steps after {args.warmup}); {out['tokens_per_s']:.0f} tokens/s"
              + ("" if comm is None else f"; the step's collectives alone over gloo: {1e3 * comm:.1f} ms"))


if __name__ == "__main__":
    main()
