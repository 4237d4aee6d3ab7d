#!/usr/bin/env python3
"""PyTorch FSDP2 baseline for reel's 2-rank training step: bench/torch_eager.py's model and
step (the "tiny" preset), with torch.distributed.fsdp.fully_shard on every block and then
the root, over the gloo backend, one thread per rank. Global batch split over the ranks.

  .venv/bin/python bench/torch_fsdp2.py --ranks 2 --batch 16 --steps 30 --warmup 5 [--json]

Compare with: mpirun -np 2 reel train --config configs/tiny.ini --dist.threads 1
--data.global_batch 16 --parallel.reshard_after_forward true (step_time_s, median after 10).
Both reshard after forward (ZeRO-3) and reduce gradients in fp32.
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


def run_rank(rank, args, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    from torch.distributed.fsdp import fully_shard
    torch.manual_seed(args.seed)
    model = te.WorldModel(args.seed)
    for block in model.blocks():
        fully_shard(block)
    fully_shard(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
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
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:
            group["lr"] = te.lr_at(step, total)
        opt.step()
        loss.item()
        elapsed = torch.tensor([time.perf_counter() - start])
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank's step (outside the timing)
        times += [elapsed.item()] if step >= args.warmup else []
    if rank == 0:
        queue.put(times)
    # Every rank is done before any leaves: a rank that tears gloo down while rank 0's
    # store goes away can abort in gloo's threads. Nothing is left to clean up after this.
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default in (("ranks", 2), ("threads", 1), ("steps", 30), ("warmup", 5), ("batch", 16), ("seed", 0),
                          ("port", 29533)):
        ap.add_argument("--" + flag, type=int, default=default)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(worker, args=(args, args.port, queue), nprocs=args.ranks, start_method="spawn")
    times = queue.get()
    ms = 1e3 * statistics.median(times)
    out = {"impl": "torch-fsdp2-gloo", "torch": torch.__version__, "ranks": args.ranks, "threads": args.threads,
           "batch": args.batch, "median_step_ms": round(ms, 2), "tokens_per_s": round(args.batch * te.L / (ms / 1e3), 1)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"FSDP2 (fully_shard, gloo, torch {out['torch']}): {args.ranks} ranks x {args.threads} thread(s), "
              f"global batch {args.batch}: median step {ms:.1f} ms; {out['tokens_per_s']:.0f} tokens/s")


if __name__ == "__main__":
    main()
