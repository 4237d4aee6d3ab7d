#include "plan/estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "model/flow.hpp"
#include "model/world_model.hpp"
#include "parallel/sequence/layout.hpp"
#include "train/throughput.hpp"

namespace reel {

ModelShape ModelShape::of(const ModelConfig& model) {
  WorldModel m(model, ParamInit{at::kCPU, /*deferred=*/true, 0});
  ModelShape s;
  s.depth = static_cast<int64_t>(m->blocks().size());
  int64_t total = 0;
  for (const auto& p : m->parameters()) total += p.numel();
  if (s.depth > 0) {
    for (const auto& p : m->blocks()[0]->parameters()) s.block += p.numel();
  }
  s.root = total - s.depth * s.block;
  return s;
}

namespace {

int64_t bytes_of(at::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }
int64_t shard_of(int64_t numel, int shards) { return (numel + shards - 1) / shards; }

// One communicator as the planner places it: ranks are laid out dp-major, sp-minor
// (ProcessMesh), consecutive ranks share a node. A group of consecutive ranks stays
// inside a node when it fits in one; a strided group crosses nodes once the ranks it
// spans do not fit.
struct Link {
  int size = 1;
  double bw = 1, latency = 0;
  // Seconds to move `bytes` (as dist/traffic.hpp counts them) in `steps` latency steps.
  double time(double bytes, double steps) const { return size > 1 ? bytes / bw + steps * latency : 0.0; }
  // Latency steps of one collective: log2(n) rounds, as the tree and PAT algorithms NCCL
  // picks at scale take (a plain ring would take n-1); an all-reduce takes two passes.
  double rounds() const { return size > 1 ? std::ceil(std::log2(double(size))) : 0.0; }
};

Link link(const Cluster& c, int size, int span) {
  const bool inside = span <= c.gpus_per_node;
  return {size, inside ? c.intra_bw : c.inter_bw, inside ? c.intra_latency : c.inter_latency};
}

// Fraction of a block's forward FLOPs spent in the attention matmuls (the rest: linears).
double attention_share(const ModelConfig& m, int64_t batch) {
  const double d = double(m.dim), hidden = double(m.mlp_hidden());
  const double fc1 = m.mlp == "swiglu" ? 2 * hidden : hidden;
  const double linear = 2.0 * double(batch * m.tokens()) * d * (4 * d + fc1 + hidden);
  return std::clamp(1.0 - linear / block_forward_flops(m, batch), 0.0, 1.0);
}

}  // namespace

std::string gb(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, bytes >= 1e9 ? "%.1f GB" : "%.1f MB", bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6);
  return text;
}

Estimate estimate(const TrainConfig& c, int world, const Cluster& cluster, const ModelShape& shape) {
  Estimate e;
  e.config = c;
  e.world = world;
  const ModelConfig& m = c.model;
  const int sp = c.mesh.sp, dp = c.mesh.dp > 0 ? c.mesh.dp : world / sp;
  const int u = c.parallel.sequence.ulysses_degree(sp), r = sp / u;
  const int k = c.mesh.shard_group > 0 ? c.mesh.shard_group : world, replicas = world / k;
  if (dp * sp != world) {
    throw std::invalid_argument("dp=" + std::to_string(dp) + " x sp=" + std::to_string(sp) + " is not the " +
                                std::to_string(world) + " devices");
  }
  if (world % k != 0) throw std::invalid_argument("shard group " + std::to_string(k) + " does not divide " + std::to_string(world));
  const int64_t M = c.data.micro_batches, micro_clips = c.data.micro_clips();
  if (micro_clips % dp != 0) {
    throw std::invalid_argument("a micro-batch of " + std::to_string(micro_clips) + " clips does not split over dp=" +
                                std::to_string(dp));
  }
  check_sequence_split(m, r, u, c.parallel.sequence);
  const auto layout = SequenceLayout::create(m.tokens(), r, u, c.parallel.sequence.balance);
  const auto& fsdp = c.parallel.fsdp;
  const int64_t pb = bytes_of(fsdp.param_type(cluster.gpu ? at::Device(at::kCUDA) : at::Device(at::kCPU)));
  const int64_t rb = bytes_of(fsdp.reduce_type());
  const int64_t b = micro_clips / dp;  // clips per rank and micro-batch
  const int64_t depth = shape.depth, root_shard = shard_of(shape.root, k), block_shard = shard_of(shape.block, k);
  const int64_t recomputed = c.parallel.activation_checkpoint.recomputed_blocks(depth);
  const bool raf = fsdp.reshard_after_forward;

  // Bytes per step, rank 0 (dist/traffic.hpp's counting).
  auto add = [&](const std::string& key, int64_t bytes) {
    if (bytes > 0) e.comm_bytes[key] += bytes;
  };
  const int64_t block_gathers = depth * M * (raf ? 2 : 1);
  if (k > 1) {
    add("shard.all_gather", (k - 1) * pb * (root_shard + block_gathers * block_shard));
    add("shard.reduce_scatter", (k - 1) * rb * (root_shard + depth * block_shard));
    add("shard.all_reduce", 2 * (k - 1) * 8 / k);
  }
  if (replicas > 1) {
    add("replicate.all_reduce", 2 * (replicas - 1) * (root_shard * rb) / replicas +
                                    depth * (2 * (replicas - 1) * (block_shard * rb) / replicas));
  }
  if (world > 1) add("world.all_reduce", 2 * (world - 1) * 24 / world);
  const auto attn = attention_traffic(layout, m.dim, 0, b, pb);
  add("ulysses.all_to_all_v", M * (depth * attn.all_to_all_backward + (depth + recomputed) * attn.all_to_all_forward));
  add("ring.sendrecv", M * (depth * attn.ring_backward + (depth + recomputed) * attn.ring_forward));

  // Memory per device.
  const int64_t root_padded = root_shard * k, block_padded = block_shard * k;
  e.persistent = 20.0 * double(root_shard + depth * block_shard);
  const int64_t in_flight = raf ? std::min<int64_t>(fsdp.prefetch ? fsdp.max_gathered : 1, depth) : depth;
  // Unreduced gradients, fp32: the root's all backward and one block's at a time; with
  // gradient accumulation every unit keeps its whole buffer until the last micro-batch.
  const double grad_buffers = M > 1 ? double(root_padded + depth * block_padded) : double(root_padded + block_padded);
  e.gathered = double(pb) * double(root_padded + in_flight * block_padded) + 4.0 * grad_buffers +
               (rb != 4 ? double(rb * block_padded) : 0.0);
  // Per block and token a step's peak holds about 44 D-wide values (52 with SwiGLU):
  // measured on long_cpu (docs/sequence-parallel.md: 5,888 tokens in 128 MiB at depth 2,
  // D = 64). Checkpointed blocks keep their input only; one is recomputed at a time.
  const double tokens = double(b) * double(layout.count(0));
  const double per_block = (m.mlp == "swiglu" ? 52 : 44) * tokens * double(m.dim) * double(pb);
  const int64_t kept = depth - recomputed;
  e.activations = double(kept) * per_block + double(recomputed) * tokens * double(m.dim) * double(pb) +
                  (recomputed > 0 ? per_block : 0.0);
  const double share = double(layout.ring_share(0).size(0)) * double(b) * double(m.dim / u);
  if (u > 1) e.buffers += 2.0 * 3.0 * share * double(pb);        // q, k, v sent and received
  if (r > 1) e.buffers += 2.0 * 2.0 * share * double(pb) + 2.0 * share * 4.0;  // k/v in flight, dK/dV
  e.reserve = cluster.reserve_bytes;

  // Time per step.
  const double rate = cluster.device_flops() * cluster.efficiency;
  const auto flops = step_flops(m, c.data.global_batch, c.parallel.activation_checkpoint);
  e.compute_s = flops.hardware / world / rate;
  const double block_fwd = block_forward_flops(m, c.data.global_batch) / world / double(M) / rate;  // one micro-batch
  const Link shard_link = link(cluster, k, k), replica_link = link(cluster, replicas, world);
  const Link world_link = link(cluster, world, world);
  const Link ulysses_link = link(cluster, u, u), ring_link = link(cluster, r, sp);
  const double g_root = shard_link.time(double((k - 1) * pb * root_shard), shard_link.rounds());
  const double g_block = shard_link.time(double((k - 1) * pb * block_shard), shard_link.rounds());
  e.gather_s = g_root + double(block_gathers) * g_block;
  if (!fsdp.prefetch) {
    e.gather_exposed_s = e.gather_s;
  } else {  // the first block of each pass waits; the others hide behind the block before
    const double fwd = g_block + double(depth - 1) * std::max(0.0, g_block - block_fwd);
    const double bwd = raf ? g_block + double(depth - 1) * std::max(0.0, g_block - 2 * block_fwd) : 0.0;
    e.gather_exposed_s = g_root + double(M) * (fwd + bwd);
  }
  const double units = double(depth + 1), unit_shard = double(root_shard + depth * block_shard) / units;
  e.reduce_s = units * shard_link.time(double((k - 1) * rb) * unit_shard, shard_link.rounds()) +
               units * replica_link.time(2.0 * (replicas - 1) * unit_shard * double(rb) / replicas, 2 * replica_link.rounds());
  const double passes = double(M) * double(depth), re = double(M) * double(recomputed);
  const double a2a = ulysses_link.time(double(passes * (attn.all_to_all_forward + attn.all_to_all_backward) +
                                              re * attn.all_to_all_forward),
                                       ulysses_link.rounds() * (4 * passes + 2 * re));
  const double ring = ring_link.time(double(passes * (attn.ring_forward + attn.ring_backward) + re * attn.ring_forward),
                                     double(r - 1) * (2 * passes + re) + double(r > 1 ? passes : 0));
  const double attention_s = attention_share(m, c.data.global_batch) * 3.0 * block_fwd * passes;
  e.sp_s = a2a + ring;
  e.sp_exposed_s = a2a + (c.parallel.sequence.ring_overlap ? std::max(0.0, ring - attention_s) : ring);
  e.small_s = world_link.time(0, 2 * world_link.rounds()) + shard_link.time(0, 2 * shard_link.rounds());
  e.step_s = e.compute_s + e.gather_exposed_s + e.reduce_s + e.sp_exposed_s + e.small_s;
  e.tokens_per_s = double(c.data.global_batch * m.tokens()) / e.step_s;
  e.mfu = flops.model / (e.step_s * world * cluster.device_flops());
  const double limit = cluster.memory_bytes;
  e.fits = e.total() <= limit;
  if (!e.fits) {
    e.reason = "needs " + gb(e.total()) + " per device, over its " + gb(limit) + " (persistent " + gb(e.persistent) +
               ", activations " + gb(e.activations) + ", gathered " + gb(e.gathered) + ")";
  }
  return e;
}

}  // namespace reel
