#!/usr/bin/env python3
"""PyTorch eager baseline for reel's training step (the "tiny" preset, one rank, CPU).

Mirrors, op for op, the C++ reference path reel takes on CPU:
  model/world_model.cpp  DiT over tubelet tokens: patch_embed; time MLP + action_embed per
                         frame-group; `depth` adaLN-Zero blocks (6 x D modulation per group,
                         gathered to tokens); final adaLN + final_proj. Same parameter names.
  model/ops.cpp          linear (+ tanh-GELU on fc1), LN(eps 1e-6, no affine) * (1 + scale)
                         + shift, RoPE on interleaved pairs (x[2i], x[2i+1]).
  model/rope.cpp         3-D RoPE: head_dim / 2 pairs in bands (t, h, w) = (rest, 1/3, 1/3).
  model/attention.cpp    CPU path for <= 512 keys: explicit scores, additive frame-causal
                         -inf bias, logsumexp, exp(s - lse) @ v (--sdpa: PyTorch's fused SDPA).
  model/flow.cpp         uint8 [B,T,H,W,C] -> [-1,1] -> patchify; per-clip generator seeded
                         mix_seed(seed, step, sample, 0x666c6f77) draws logit-normal times of
                         the target groups, then eps; context groups clean; x_t = (1-t) x + t eps;
                         target eps - x; loss = sum of squared error on target tokens / number
                         of target elements of the batch (RNG identical to reel's per clip).
  train/trainer.cpp      a step: flow batch, forward, loss, backward, global-norm clip 1.0,
  optim/                 AdamW (lr 3e-3, betas 0.9/0.99, eps 1e-8, weight decay 0 as in
                         configs/tiny.ini; warm-up 50 then cosine to 0.1 x).
Not mirrored: reel's FSDP bookkeeping (1 rank: gathers are copies) and its prefetching loader.
PyTorch gets its best CPU settings by default: fused AdamW and foreach clipping (reel's
optimizer and clip are one kernel each over its flat shard); --adamw and --clip choose others.

Compare at the same thread count, warm-up and number of timed steps (2-core machine:
serialise timing runs with flock; bench/vs_torch.sh does all of this in alternating pairs):
  flock /tmp/reel.lock .venv/bin/python bench/torch_eager.py --threads 2 --steps 30 --warmup 10 --batch 16
  flock /tmp/reel.lock build/launch/reel train --config configs/tiny.ini --data.path runs/world.h5 \
      --run.dir /tmp/eager_cmp_run --run.overwrite true --run.steps 40 --run.eval_every 0 \
      --run.plot false --run.log_every 20 --dist.threads 2 --data.global_batch 16
reel logs "step X ms" (one step) every log_every steps; step_time_s of every step is in
RUN_DIR/metrics.jsonl (take the median after the first 10). --verify RUN_DIR loads a reel
run's model.h5 and recomputes its last eval_loss (an end-to-end check of the model's math).
"""
import argparse, configparser, json, math, os, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The "tiny" preset (model/config.cpp).
FRAMES, CH, H, W, ACT = 8, 3, 16, 16, 2
PT, PH, PW = 2, 4, 4
DIM, DEPTH, HEADS, MLP_RATIO, CONTEXT = 128, 4, 4, 4.0, 2
G, HH, WW = FRAMES // PT, H // PH, W // PW  # 4 frame-groups of 4 x 4 tokens
LG = HH * WW                                # tokens per group: 16
L, P, HD = G * LG, PT * PH * PW * CH, DIM // HEADS  # L 64 tokens, P 96, head_dim 32
HIDDEN = (int(DIM * MLP_RATIO) + 7) // 8 * 8        # 512
TIME_FEATURES, ROPE_THETA, M64 = 256, 10000.0, (1 << 64) - 1


def mix64(x):  # splitmix64 finaliser (model/seed.hpp)
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def mix_seed(seed, a, b=0, c=0):  # model/seed.hpp (uint64 arithmetic)
    return mix64(mix64(mix64(mix64(seed & M64) ^ (a & M64)) ^ (b & M64)) ^ (c & M64))


def token_context():
    """Per-token frame-group [L] and RoPE tables [L, HD/2] (rope.cpp; built every forward there too)."""
    idx = torch.arange(L)
    pos = torch.stack([idx // LG, (idx // WW) % HH, idx % WW], 1)  # [L, 3] (t, h, w)
    hw = HD // 2 // 3
    angles = []
    for axis, n in enumerate((HD // 2 - 2 * hw, hw, hw)):
        freq = torch.pow(ROPE_THETA, -torch.arange(n, dtype=torch.float64) / n)  # [n]
        angles.append(pos[:, axis].double().unsqueeze(1) * freq.unsqueeze(0))   # [L, n]
    angle = torch.cat(angles, 1)  # [L, HD/2]
    return idx // LG, torch.cos(angle).float(), torch.sin(angle).float()


def rope(x, cos, sin):  # x [B, H, L, HD]; cos, sin [L, HD/2]
    pairs = x.reshape(*x.shape[:3], HD // 2, 2)  # [B, H, L, HD/2, 2]
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], 4).reshape(x.shape)


def modulated_norm(x, shift, scale):  # all [B, L, D]
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6) * (1 + scale) + shift


def attention(q, k, v, groups, sdpa=False):  # q, k, v [B, H, L, HD]; groups [L]
    visible = groups.unsqueeze(0) <= groups.unsqueeze(1)  # [Lq, Lk] frame-causal
    if sdpa:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
    bias = torch.zeros(visible.shape).masked_fill(~visible, float("-inf"))  # [Lq, Lk]
    scores = torch.matmul(q, k.transpose(-2, -1)).mul(1.0 / math.sqrt(q.shape[-1])) + bias  # [B, H, Lq, Lk]
    lse = torch.logsumexp(scores, -1)  # [B, H, Lq]
    return torch.matmul(torch.exp(scores - lse.unsqueeze(-1)), v)  # [B, H, Lq, HD]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
        self.fc1, self.fc2 = nn.Linear(DIM, HIDDEN), nn.Linear(HIDDEN, DIM)
        self.ada = nn.Linear(DIM, 6 * DIM)
        self.sdpa = False

    def forward(self, x, cond, groups, cos, sin):  # x [B, L, D]; cond [B, G, D]
        b, l, d = x.shape
        mod = self.ada(F.silu(cond)).index_select(1, groups).chunk(6, -1)  # 6 x [B, L, D]
        qkv = self.qkv(modulated_norm(x, mod[0], mod[1])).view(b, l, 3, HEADS, HD).permute(2, 0, 3, 1, 4)
        att = attention(rope(qkv[0], cos, sin), rope(qkv[1], cos, sin), qkv[2], groups, self.sdpa)
        y = x + mod[2] * self.proj(att.permute(0, 2, 1, 3).reshape(b, l, d))  # [B, L, D]
        hidden = F.gelu(self.fc1(modulated_norm(y, mod[3], mod[4])), approximate="tanh")  # [B, L, HIDDEN]
        return y + mod[5] * self.fc2(hidden)


def timestep_embedding(t, dim=TIME_FEATURES):  # t [N] -> [N, dim]
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
    args = t.float().unsqueeze(1) * 1000.0 * freqs.unsqueeze(0)  # [N, half]
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


class WorldModel(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.patch_embed = nn.Linear(P, DIM)
        self.time_fc1, self.time_fc2 = nn.Linear(TIME_FEATURES, DIM), nn.Linear(DIM, DIM)
        self.action_embed = nn.Linear(PT * ACT, DIM)
        for i in range(DEPTH):
            setattr(self, f"block{i}", Block())  # reel's names: block0.qkv.weight, ...
        self.final_ada, self.final_proj = nn.Linear(DIM, 2 * DIM), nn.Linear(DIM, P)
        with torch.no_grad():  # world_model.cpp init_parameter: N(0, 0.02) from (seed, name); adaLN-Zero
            for name, p in self.named_parameters():
                if "bias" in name or "ada" in name or "final_proj" in name:
                    p.zero_()
                else:
                    h = 0xCBF29CE484222325
                    for ch in name.encode():
                        h = ((h ^ ch) * 0x100000001B3) & M64
                    gen = torch.Generator().manual_seed(mix_seed(seed, h))
                    p.copy_(torch.empty(p.shape).normal_(0.0, 0.02, generator=gen))

    def blocks(self):  # [Block] x DEPTH
        return [getattr(self, f"block{i}") for i in range(DEPTH)]

    def forward(self, tokens, t, actions):  # tokens [B, L, P]; t [B, G]; actions [B, T, A]
        b = tokens.shape[0]
        groups, cos, sin = token_context()
        cond = self.time_fc2(F.silu(self.time_fc1(timestep_embedding(t.reshape(-1))))).view(b, G, DIM)
        cond = cond + self.action_embed(actions.reshape(b, G, PT * ACT))  # [B, G, D]
        x = self.patch_embed(tokens)  # [B, L, D]
        for block in self.blocks():
            x = block(x, cond, groups, cos, sin)
        shift, scale = self.final_ada(F.silu(cond)).index_select(1, groups).chunk(2, -1)  # 2 x [B, L, D]
        return self.final_proj(modulated_norm(x, shift, scale))  # [B, L, P]


def patchify(frames):  # uint8 [B, T, H, W, C] -> tokens [B, L, P], P in (pt, ph, pw, C) order
    v = frames.permute(0, 1, 4, 2, 3).float().div(127.5).sub(1.0)  # [B, T, C, H, W] in [-1, 1]
    b = v.shape[0]
    x = v.reshape(b, G, PT, CH, HH, PH, WW, PW).permute(0, 1, 4, 6, 2, 5, 7, 3)  # [B, G, H', W', pt, ph, pw, C]
    return x.reshape(b, L, P)


def flow_batch(x0, sample_ids, step, seed):  # x0 [B, L, P] -> x_t, t [B, G], target, weight [B, L]
    times, noise = [], []
    for sid in sample_ids:  # one generator per (seed, step, sample): times, then eps
        gen = torch.Generator().manual_seed(mix_seed(seed, step, sid, 0x666C6F77))
        z = torch.empty(G - CONTEXT).normal_(0.0, 1.0, generator=gen)  # logit-normal(0, 1) per target group
        times.append(torch.cat([torch.zeros(CONTEXT), torch.sigmoid(z)]))
        noise.append(torch.empty(L, P).normal_(0.0, 1.0, generator=gen))
    t = torch.stack(times)                                                         # [B, G]
    eps = torch.stack(noise)                                                       # [B, L, P]
    t_tok = t.repeat_interleave(LG, 1).unsqueeze(-1)                               # [B, L, 1]
    weight = (torch.arange(G) >= CONTEXT).float().repeat_interleave(LG).expand(len(sample_ids), L)  # [B, L]
    return (1 - t_tok) * x0 + t_tok * eps, t, (eps - x0) * weight.unsqueeze(-1), weight


def flow_loss(pred, target, weight, clips):  # sum of squared error / target elements of the batch
    return ((pred - target) * weight.unsqueeze(-1)).pow(2).sum() / (clips * (G - CONTEXT) * LG * P)


def lr_at(step, total, lr=3e-3, warmup=50, min_ratio=0.1):  # optim/schedule.cpp (cosine)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_adamw(params, impl):  # reel's AdamW settings (configs/tiny.ini); impl: default | foreach | fused
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
    return torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, **kwargs)


def clip(params, impl):  # global-norm clip at 1.0; impl: default | foreach. Returns the norm before clipping.
    return torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True if impl == "foreach" else None)


def verify(run_dir, root):
    """Loads a reel run's model.h5 and recomputes its last eval_loss (held-out clips, step -1 noise)."""
    import h5py
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(run_dir, "config.ini"))
    path, n, seed = cfg["data"]["path"], int(cfg["data"]["eval_clips"]), int(cfg["run"]["seed"])
    path = path if os.path.isabs(path) or os.path.exists(path) else os.path.join(root, path)
    model = WorldModel()
    with h5py.File(os.path.join(run_dir, "model.h5")) as f:
        model.load_state_dict({k: torch.from_numpy(v[()]) for k, v in f["params"].items()})
    with h5py.File(path) as f:
        total = f["frames"].shape[0]
        frames, actions = torch.from_numpy(f["frames"][total - n:]), torch.from_numpy(f["actions"][total - n:])
    x_t, t, target, weight = flow_batch(patchify(frames), range(total - n, total), -1, seed)
    with torch.no_grad():
        ours = flow_loss(model(x_t, t, actions), target, weight, n).item()
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    theirs = [r["eval_loss"] for r in rows if "eval_loss" in r][-1]
    print(f"verify {run_dir}: eval_loss torch {ours:.8f}  reel {theirs:.8f}  rel diff {abs(ours - theirs) / theirs:.2e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag, default in (("threads", 2), ("steps", 30), ("warmup", 5), ("batch", 16), ("seed", 0)):
        ap.add_argument("--" + flag, type=int, default=default)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (off: eager)")
    ap.add_argument("--sdpa", action="store_true", help="F.scaled_dot_product_attention, not reel's explicit scores")
    ap.add_argument("--adamw", choices=["default", "foreach", "fused"], default="fused",
                    help="torch.optim.AdamW implementation: fused (here: one kernel over every tensor, the closest "
                         "to reel's one flat-shard step), foreach, or default (PyTorch's choice: a per-tensor loop on CPU)")
    ap.add_argument("--clip", choices=["default", "foreach"], default="foreach",
                    help="clip_grad_norm_: foreach (here: multi-tensor norm and scale) or default (a per-tensor loop on CPU)")
    ap.add_argument("--verify", metavar="RUN_DIR", help="check against a reel run's model.h5 and eval_loss, then exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.verify:
        return verify(args.verify, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    torch.manual_seed(args.seed)
    model = WorldModel(args.seed)
    for block in model.blocks():
        block.sdpa = args.sdpa
    params, fwd = sum(p.numel() for p in model.parameters()), torch.compile(model) if args.compile else model
    opt = make_adamw(model.parameters(), args.adamw)
    b, total = args.batch, args.warmup + args.steps
    # Random clips, made before timing (reel's loader prefetches): uint8 frames, actions in [-1, 1].
    data = [(torch.randint(0, 256, (b, FRAMES, H, W, CH), dtype=torch.uint8),
             torch.rand(b, FRAMES, ACT) * 2 - 1) for _ in range(4)]
    times, losses = [], []
    for step in range(total):
        frames, actions = data[step % len(data)]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        x_t, t, target, weight = flow_batch(patchify(frames), range(step * b, step * b + b), step, args.seed)
        loss = flow_loss(fwd(x_t, t, actions), target, weight, b)
        loss.backward()
        norm = clip(model.parameters(), args.clip)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total)
        opt.step()
        losses.append(loss.item())
        elapsed = time.perf_counter() - start  # the whole step, as reel's step_time_s
        times += [elapsed] if step >= args.warmup else []
    ms = 1e3 * statistics.median(times)
    out = {"impl": "torch-" + ("compile" if args.compile else "eager") + ("+sdpa" if args.sdpa else ""),
           "torch": torch.__version__, "threads": args.threads, "batch": b, "params": params,
           "steps": args.steps, "warmup": args.warmup, "median_step_ms": round(ms, 2),
           "min_step_ms": round(1e3 * min(times), 2), "tokens_per_s": round(b * L / (ms / 1e3), 1),
           "adamw": args.adamw, "clip": args.clip, "last_loss": round(losses[-1], 5), "last_grad_norm": round(float(norm), 4)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['impl']} (torch {out['torch']}): {params} parameters ({params / 1e6:.2f}M), "
              f"{args.threads} threads, batch {b}: median step {ms:.1f} ms (min {out['min_step_ms']:.1f}) "
              f"over {args.steps} steps after {args.warmup} warm-up; {out['tokens_per_s']:.0f} tokens/s; "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
