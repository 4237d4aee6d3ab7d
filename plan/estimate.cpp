#include "reel/plan/estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "reel/dist/require.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/world_model.hpp"
#include "reel/parallel/sequence/layout.hpp"
#include "reel/train/model_spec.hpp"
#include "reel/train/throughput.hpp"

namespace reel {

ModelShape ModelShape::of(const ModelConfig& model) {
  const auto m = model_spec(model.family).build(model, ParamInit{at::kCPU, /*deferred=*/true, 0});
  ModelShape s;
  s.depth = static_cast<int64_t>(m->num_blocks());
  int64_t total = 0;
  for (const auto& p : m->parameters()) total += p.numel(), s.largest = std::max<int64_t>(s.largest, p.numel());
  if (s.depth > 0) {
    for (const auto& p : m->block(0).parameters()) s.block += p.numel();
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
  const double fc1 = double(m.mlp_fc1());
  const double linear = 2.0 * double(batch * m.tokens()) * d * (4 * d + fc1 + hidden);
  return std::clamp(1.0 - linear / model_spec(m.family).block_forward_flops(m, batch), 0.0, 1.0);
}

}  // namespace

std::string gb(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, bytes >= 1e9 ? "%.1f GB" : "%.1f MB", bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6);
  return text;
}

namespace {

// The numbers of one layout, resolved and checked once.
struct Shape {
  int world = 1, dp = 1, sp = 1, u = 1, r = 1, k = 1, replicas = 1;
  int per_node = 1;        // ranks per node: placement position p runs on node p / per_node
  int64_t M = 1, b = 1;    // micro-batches; clips per rank and micro-batch
  int64_t pb = 4, rb = 4;  // bytes of the compute (gather) and reduce dtypes
  int64_t depth = 0, root_shard = 0, block_shard = 0, recomputed = 0;
  bool raf = true, prefetch = false;  // reshard_after_forward; prefetch resolved for the device
  bool async_reduce = false;          // async_reduce resolved for the device
  // Reductions per unit per step: M with sharded gradient accumulation, else 1 (the last
  // micro-batch); root gathers per step likewise (unsharded keeps the root pinned).
  int64_t reductions = 1;
  FsdpAliases alias;  // FSDP on one rank views its shard (parallel/fsdp.hpp: fsdp_aliases)
  SequenceLayout layout;
  AttentionTraffic attn;  // per block and micro-batch, rank 0
};

// Every rule a layout must obey is the runtime's own, asked of its owner: the mesh's
// degrees (dist/process_mesh.hpp), the data's split (DataConfig), the sequence split
// (parallel/sequence/layout.hpp) and FSDP's one-rank aliasing (parallel/fsdp.hpp).
Shape resolve_shape(const TrainConfig& c, int world, const Cluster& cluster, const ModelShape& model) {
  Shape s;
  s.world = world;
  s.sp = c.mesh.sp;
  s.dp = c.mesh.dp_for(world);
  s.u = c.parallel.sequence.ulysses_degree(s.sp);
  s.r = s.sp / s.u;
  s.k = c.mesh.shard_ranks(world, cluster.gpus_per_node);
  s.per_node = cluster.gpus_per_node;
  const std::string wrong = mesh_degrees_error(world, s.dp, s.sp, s.k, s.u);
  require(wrong.empty(), wrong);
  s.replicas = world / s.k;
  s.M = c.data.layout_micro_batches(s.dp);
  s.b = c.data.global_batch / s.M / s.dp;
  check_sequence_split(c.model.sequence_shape(), s.r, s.u, c.parallel.sequence);
  s.layout = SequenceLayout::create(c.model.tokens(), s.r, s.u, c.parallel.sequence.balance);
  const auto& fsdp = c.parallel.fsdp;
  const at::Device device = cluster.gpu ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  s.pb = bytes_of(fsdp.param_type(device));
  s.rb = bytes_of(fsdp.reduce_type());
  s.depth = model.depth;
  s.root_shard = shard_of(model.root, s.k);
  s.block_shard = shard_of(model.block, s.k);
  s.recomputed = c.parallel.activation_checkpoint.recomputed_blocks(s.depth);
  s.raf = fsdp.reshard_after_forward;
  s.prefetch = fsdp.prefetches(device);
  s.async_reduce = fsdp.reduces_async(device);
  s.reductions = fsdp.accumulates_sharded() ? s.M : 1;
  s.alias = fsdp_aliases(s.k, fsdp.param_type(device), fsdp.reduce_type(), s.replicas);
  // Rank 0 is placement position 0 and sp rank 0 of the first sp group: sp rank j sits at position j.
  s.attn = attention_traffic(s.layout, c.model.dim, 0, s.b, s.pb, [&](int sp_rank) { return sp_rank >= s.per_node; });
  return s;
}

// Rank 0's bytes per step, as dist/traffic.hpp counts them.
// Rank 0's bytes per step by "group.call"; with `internode`, only those sent to another
// node (dist/traffic.hpp's split: a ring call's bytes cross when rank 0's next rank in
// the group, at placement position `next`, is on another node).
std::map<std::string, int64_t> step_bytes(const Shape& s, bool internode) {
  std::map<std::string, int64_t> out;
  const auto crosses = [&](int next) { return !internode || next / s.per_node != 0; };
  auto add = [&](const std::string& key, int64_t bytes, bool counted = true) {
    if (bytes > 0 && counted) out[key] += bytes;
  };
  const int64_t k = s.k, n = s.replicas, block_gathers = s.depth * s.M * (s.raf ? 2 : 1);
  if (k > 1) {
    add("shard.all_gather", (k - 1) * s.pb * (s.reductions * s.root_shard + block_gathers * s.block_shard), crosses(1));
    add("shard.reduce_scatter", s.reductions * (k - 1) * s.rb * (s.root_shard + s.depth * s.block_shard), crosses(1));
    add("shard.all_reduce", 2 * (k - 1) * 8 / k, crosses(1));  // the gradient norm
  }
  if (n > 1) {  // per unit, once per step (the accumulated shard), each call rounded down
    add("replicate.all_reduce",
        2 * (n - 1) * (s.root_shard * s.rb) / n + s.depth * (2 * (n - 1) * (s.block_shard * s.rb) / n), crosses(s.k));
  }
  if (s.world > 1) add("world.all_reduce", 2 * int64_t(s.world - 1) * 24 / s.world, crosses(1));  // the loss
  const int64_t passes = s.M * s.depth, forwards = s.M * (s.depth + s.recomputed);
  const auto& a = s.attn;
  add("ulysses.all_to_all_v", internode
                                  ? passes * a.all_to_all_backward_internode + forwards * a.all_to_all_forward_internode
                                  : passes * a.all_to_all_backward + forwards * a.all_to_all_forward);
  add("ring.sendrecv", internode ? passes * a.ring_backward_internode + forwards * a.ring_forward_internode
                                 : passes * a.ring_backward + forwards * a.ring_forward);
  return out;
}

void estimate_memory(const TrainConfig& c, const Shape& s, const ModelShape& shape, const Cluster& cluster,
                     Estimate& e) {
  const auto& fsdp = c.parallel.fsdp;
  const int64_t root_padded = s.root_shard * s.k, block_padded = s.block_shard * s.k;
  e.persistent = 20.0 * double(s.root_shard + s.depth * s.block_shard);
  const int64_t in_flight = s.raf ? std::min<int64_t>(s.prefetch ? fsdp.max_gathered : 1, s.depth) : s.depth;
  if (!s.alias.params) {  // the gathered units, and the cast shards their all-gathers read
    e.gathered += double(s.pb) * double(root_padded + in_flight * block_padded);
    if (s.pb != 4) e.gathered += double(s.pb) * double(s.root_shard + in_flight * s.block_shard);
  }
  // Autograd hands FSDP's hook one parameter's gradient (compute dtype) while the
  // previous one's .grad still lingers (parallel/fsdp.hpp, GradSink): two of the largest.
  e.gathered += 2.0 * double(s.pb) * double(shape.largest);
  if (!s.alias.grads) {
    // Unreduced gradients, fp32: the root's all backward and one block's at a time; with
    // unsharded gradient accumulation every unit keeps its whole buffer until the last
    // micro-batch.
    const bool whole = s.M > 1 && s.reductions == 1;
    e.gathered += 4.0 * double(whole ? root_padded + s.depth * block_padded : root_padded + block_padded);
    if (s.rb != 4) e.gathered += double(s.rb) * double(std::max(root_padded, block_padded));  // the cast to reduce
    if (s.async_reduce) {  // block reductions in flight: their send and receive buffers, within the bound
      const double unit = double(s.rb) * double(block_padded + s.block_shard);
      const double fit = std::floor(double(fsdp.reduce_in_flight_mb) * double(1 << 20) / unit);
      e.gathered += std::min(double(s.depth), std::max(1.0, fit)) * unit;
    }
  }
  // Per block and token a step's peak holds about 44 D-wide values (52 with SwiGLU):
  // measured on long_cpu (docs/sequence-parallel.md: 5,888 tokens in 128 MiB at depth 2,
  // D = 64). Checkpointed blocks keep their input only; one is recomputed at a time.
  const ModelConfig& m = c.model;
  const double tokens = double(s.b) * double(s.layout.count(0)), width = tokens * double(m.dim) * double(s.pb);
  const double per_block = (m.mlp == MlpKind::kSwiglu ? 52 : 44) * width;
  e.activations =
      double(s.depth - s.recomputed) * per_block + double(s.recomputed) * width + (s.recomputed > 0 ? per_block : 0.0);
  const double share = double(s.layout.ring_share(0).size(0)) * double(s.b) * double(m.dim / s.u);
  if (s.u > 1) e.buffers += 2.0 * 3.0 * share * double(s.pb);                      // q, k, v sent and received
  if (s.r > 1) e.buffers += 2.0 * 2.0 * share * double(s.pb) + 2.0 * share * 4.0;  // k/v in flight, dK/dV
  e.reserve = cluster.reserve_bytes;
}

// The FSDP all-gathers of one step that prefetch does not hide (parallel/fsdp.cpp): the
// next block is prefetched only while fewer than max_gathered blocks are gathered or in
// flight, the running one included. Resharding after forward keeps that count low;
// without it the forward's blocks stay gathered and prefetch stops after max_gathered - 1.
double exposed_gathers(const TrainConfig& c, const Shape& s, double g_block, double block_fwd) {
  const auto& fsdp = c.parallel.fsdp;
  const int64_t hidden_max = !s.prefetch || fsdp.max_gathered < 2 ? 0
                             : s.raf                              ? s.depth - 1
                                     : std::min<int64_t>(s.depth - 1, fsdp.max_gathered - 1);
  auto pass = [&](double compute) {  // one pass over the blocks, `compute` s per block
    return double(s.depth - hidden_max) * g_block + double(hidden_max) * std::max(0.0, g_block - compute);
  };
  return double(s.M) * (pass(block_fwd) + (s.raf ? pass(2 * block_fwd) : 0.0));
}

// The backward of one micro-batch that reduces, replayed against parallel/fsdp.cpp's
// asynchronous reduction, on a clock: each block's backward takes `window` seconds of
// compute; a communicator runs its calls one after another (its timeline), the shard
// group's prefetched all-gather of the next block first at the start of each backward.
// When a unit's backward completes: under HSDP the reduce-scatters in flight are waited
// and their all-reduces issued (on the replicas' timeline: its own link on GPUs; the same
// progress thread as the shard group's on CPU ranks, share_progress); then the oldest
// reductions are finished while the bytes in flight exceed the bound; then its own
// reduce-scatter is issued. The root's backward adds no window. The rest is waited at
// the end. Returns the seconds the compute waited.
struct ReducePass {
  int64_t depth = 0;
  double window = 0, gather = 0;           // per block: backward compute; prefetch on the shard link
  double rs_block = 0, rs_root = 0;        // reduce-scatter seconds
  double ar_block = 0, ar_root = 0;        // all-reduce over the replicas (0: none this pass)
  double bytes_block = 0, bytes_root = 0;  // buffers a reduce-scatter in flight holds
  double wire_block = 0, wire_root = 0;    // ... and its all-reduce's, once scattered
  double bound = 0;                        // reduce_in_flight_mb, bytes
  bool shared = false;                     // one progress for both communicators (MPI)
};

int64_t fsdp_bound(const TrainConfig& c) {
  return std::max<int64_t>(0, c.parallel.fsdp.reduce_in_flight_mb) * (int64_t{1} << 20);
}

double reduce_pass_stall(const ReducePass& p) {
  struct Timeline {
    double free = 0;
    double run(double at, double seconds) { return free = std::max(free, at) + seconds; }
  } shard, own;
  Timeline& replica = p.shared ? shard : own;
  struct Pending {
    double rs_done, ar, bytes, wire, ar_done = -1;
    bool scattered = false;
  };
  std::vector<Pending> queue;  // oldest first
  double t = 0;
  auto scatter = [&](Pending& u) {
    if (u.scattered) return;
    t = std::max(t, u.rs_done), u.scattered = true;
    if (u.ar > 0) u.ar_done = replica.run(t, u.ar);
  };
  auto finish = [&](Pending& u) { scatter(u), t = std::max(t, u.ar_done); };
  auto held = [&] {
    double b = 0;
    for (const auto& u : queue) b += u.scattered ? u.wire : u.bytes;
    return b;
  };
  for (int64_t i = 0; i <= p.depth; ++i) {  // blocks depth-1 .. 0, then the root
    const bool root = i == p.depth;
    if (!root) {
      if (i + 1 < p.depth) shard.run(t, p.gather);
      t += p.window;
    }
    for (auto& u : queue) {
      if (u.ar > 0) scatter(u);
    }
    const double bytes = root ? p.bytes_root : p.bytes_block;
    while (!queue.empty() && held() > 0 && held() + bytes > p.bound) {
      finish(queue.front());
      queue.erase(queue.begin());
    }
    queue.push_back({shard.run(t, root ? p.rs_root : p.rs_block), root ? p.ar_root : p.ar_block, bytes,
                     root ? p.wire_root : p.wire_block});
  }
  for (auto& u : queue) scatter(u);
  for (auto& u : queue) finish(u);
  return t - double(p.depth) * p.window;
}

void estimate_time(const TrainConfig& c, const Shape& s, const Cluster& cluster, Estimate& e) {
  const ModelConfig& m = c.model;
  const double rate = cluster.device_flops() * cluster.efficiency;
  const auto flops = step_flops(model_spec(m.family), m, c.data.global_batch, c.parallel.activation_checkpoint);
  e.compute_s = flops.hardware / s.world / rate;
  const double block_fwd = model_spec(m.family).block_forward_flops(m, c.data.global_batch) / s.world / double(s.M) /
                           rate;  // one micro-batch
  const Link shard = link(cluster, s.k, s.k), replica = link(cluster, s.replicas, s.world);
  const Link world = link(cluster, s.world, s.world), ulysses = link(cluster, s.u, s.u),
             ring = link(cluster, s.r, s.sp);
  const double g_root = shard.time(double((s.k - 1) * s.pb * s.root_shard), shard.rounds());
  const double g_block = shard.time(double((s.k - 1) * s.pb * s.block_shard), shard.rounds());
  e.gather_s = double(s.reductions) * g_root + double(s.depth * s.M * (s.raf ? 2 : 1)) * g_block;
  e.gather_exposed_s = double(s.reductions) * g_root + exposed_gathers(c, s, g_block, block_fwd);
  const double units = double(s.depth + 1), unit_shard = double(s.root_shard + s.depth * s.block_shard) / units;
  const double hsdp =
      units * replica.time(2.0 * (s.replicas - 1) * unit_shard * double(s.rb) / s.replicas, 2 * replica.rounds());
  const double R = double(s.reductions);  // reduce-scatter passes per step
  e.reduce_s = R * units * shard.time(double((s.k - 1) * s.rb) * unit_shard, shard.rounds()) + hsdp;
  e.reduce_exposed_s = e.reduce_s;
  if (s.async_reduce && s.depth > 0) {
    auto rs = [&](int64_t elems) { return shard.time(double((s.k - 1) * s.rb * elems), shard.rounds()); };
    auto ar = [&](int64_t elems) {
      return replica.time(2.0 * (s.replicas - 1) * double(elems * s.rb) / s.replicas, 2 * replica.rounds());
    };
    ReducePass p;
    p.depth = s.depth;
    p.window = 2 * block_fwd;
    p.gather = s.raf && s.prefetch ? g_block : 0.0;
    p.rs_block = rs(s.block_shard), p.rs_root = rs(s.root_shard);
    p.bytes_block = double(s.rb * (s.block_shard * (s.k + 1))),
    p.bytes_root = double(s.rb * (s.root_shard * (s.k + 1)));
    p.bound = double(fsdp_bound(c));
    p.shared = !cluster.gpu;
    // Sharded accumulation reduces every micro-batch; the replicas' all-reduce only on the last.
    e.reduce_exposed_s = double(s.reductions - 1) * reduce_pass_stall(p);
    if (s.replicas > 1) {
      p.ar_block = ar(s.block_shard), p.ar_root = ar(s.root_shard);
      if (s.rb != 4) p.wire_block = double(s.rb * s.block_shard), p.wire_root = double(s.rb * s.root_shard);
    }
    e.reduce_exposed_s += reduce_pass_stall(p);
  }
  const double passes = double(s.M * s.depth), re = double(s.M * s.recomputed);
  const double a2a = ulysses.time(
      passes * double(s.attn.all_to_all_forward + s.attn.all_to_all_backward) + re * double(s.attn.all_to_all_forward),
      ulysses.rounds() * (4 * passes + 2 * re));
  const double ring_s =
      ring.time(passes * double(s.attn.ring_forward + s.attn.ring_backward) + re * double(s.attn.ring_forward),
                double(s.r - 1) * (2 * passes + re) + double(s.r > 1 ? passes : 0));
  const double attention_s = attention_share(m, c.data.global_batch) * 3.0 * block_fwd * passes;
  e.sp_s = a2a + ring_s;
  e.sp_exposed_s = a2a + (c.parallel.sequence.ring_overlap ? std::max(0.0, ring_s - attention_s) : ring_s);
  e.small_s = world.time(0, 2 * world.rounds()) + shard.time(0, 2 * shard.rounds());
  e.step_s = e.compute_s + e.gather_exposed_s + e.reduce_exposed_s + e.sp_exposed_s + e.small_s;
  e.tokens_per_s = double(c.data.global_batch * m.tokens()) / e.step_s;
  e.mfu = flops.model / (e.step_s * s.world * cluster.device_flops());
}

}  // namespace

Estimate estimate(const TrainConfig& c, int world, const Cluster& cluster, const ModelShape& shape) {
  Estimate e;
  e.config = c;
  e.world = world;
  const Shape s = resolve_shape(c, world, cluster, shape);
  e.config.mesh.shard_group = s.k == world ? 0 : s.k;  // "node" resolved, as the reports show it
  e.config.data.micro_batches = s.M;                   // data.micro_batch resolved likewise
  e.config.data.micro_batch = 0;
  e.comm_bytes = step_bytes(s, false);
  e.comm_bytes_internode = step_bytes(s, true);
  estimate_memory(c, s, shape, cluster, e);
  estimate_time(c, s, cluster, e);
  e.fits = e.total() <= cluster.memory_bytes;
  if (!e.fits) {
    e.reason = "needs " + gb(e.total()) + " per device, over its " + gb(cluster.memory_bytes) + " (persistent " +
               gb(e.persistent) + ", activations " + gb(e.activations) + ", gathered " + gb(e.gathered) + ")";
  }
  return e;
}

}  // namespace reel
