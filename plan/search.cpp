#include "reel/plan/search.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace reel {
namespace {

// Divisors of n in increasing order (n >= 1), by trial up to sqrt(n).
std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> low, high;
  for (int64_t d = 1; d * d <= n; ++d) {
    if (n % d != 0) continue;
    low.push_back(d);
    if (d != n / d) high.push_back(n / d);
  }
  low.insert(low.end(), high.rbegin(), high.rend());
  return low;
}

Estimate try_estimate(const TrainConfig& c, int world, const Cluster& cluster, const ModelShape& shape) {
  try {
    return estimate(c, world, cluster, shape);
  } catch (const std::invalid_argument& ex) {  // a split reel would refuse: the reason is reel's own
    Estimate e;
    e.config = c;
    e.world = world;
    e.reason = ex.what();
    return e;
  }
}

bool memory_reason(const Estimate& e) { return e.reason.rfind("needs ", 0) == 0; }

// The sequence-parallel choices for degree sp: Ulysses, ring, and hybrid at each Ulysses
// degree strictly inside (1, sp) that divides it (the option parallel.ulysses).
std::vector<SequenceConfig> sequence_modes(int sp) {
  if (sp == 1) return {SequenceConfig{}};
  std::vector<SequenceConfig> out = {SequenceConfig{}, SequenceConfig{}};
  out[1].mode = SpMode::kRing;
  for (int64_t u : divisors(sp)) {
    if (u == 1 || u == sp) continue;
    out.emplace_back();
    out.back().mode = SpMode::kHybrid;
    out.back().ulysses = static_cast<int>(u);
  }
  return out;
}

// The fewest micro-batches (of `counts`, increasing) with which the layout fits. Else it
// is rejected with the reason of the last count tried: the most micro-batches, or the
// first reason that is not memory (a split that no count can make run).
void search_micro_batches(TrainConfig c, int dp, int world, const Cluster& cluster, const std::vector<int64_t>& counts,
                          Plan& plan) {
  Estimate last;
  bool any = false;
  for (int64_t m : counts) {
    if (!c.data.splits(m, dp)) continue;
    c.data.micro_batches = m;
    c.data.micro_batch = 0;  // the searched count, not one derived from clips per rank
    c.parallel.fsdp.grad_accumulation = GradAccumulation::kSharded;
    Estimate e = try_estimate(c, world, cluster, plan.shape);
    if (m > 1) {  // both accumulation modes: the faster of those that fit
      c.parallel.fsdp.grad_accumulation = GradAccumulation::kUnsharded;
      Estimate u = try_estimate(c, world, cluster, plan.shape);
      if (u.fits && (!e.fits || u.step_s < e.step_s)) e = std::move(u);
    }
    if (e.fits) {
      plan.fitting.push_back(std::move(e));
      return;
    }
    any = true;
    const bool memory = memory_reason(e);
    last = std::move(e);
    if (!memory) break;  // the split itself cannot run: more micro-batches will not help
  }
  if (!any) {
    last.config = c;
    last.world = world;
    last.reason = "the global batch of " + std::to_string(c.data.global_batch) +
                  " clips does not split over dp=" + std::to_string(dp) + " (raise data.global_batch)";
  }
  plan.rejected.push_back(std::move(last));
}

}  // namespace

Plan make_plan(const TrainConfig& config, const Cluster& cluster, bool given_only) {
  cluster.validate();
  Plan plan{cluster, ModelShape::of(config.model), {}, {}};
  const int world = cluster.devices();
  if (given_only) {
    Estimate e = try_estimate(config, world, cluster, plan.shape);
    (e.fits ? plan.fitting : plan.rejected).push_back(std::move(e));
    return plan;
  }
  // Micro-batch counts: the divisors of the global batch (at most 2^31 clips: a plan, not a loop).
  if (config.data.global_batch > (int64_t(1) << 31)) {
    throw std::invalid_argument("data.global_batch " + std::to_string(config.data.global_batch) +
                                " is beyond what reel plan searches (2^31 clips)");
  }
  const auto counts = divisors(config.data.global_batch);
  // FSDP over every device, and HSDP over one or two nodes where such groups divide the world.
  const std::set<int> shard_groups = {world, cluster.gpus_per_node, 2 * cluster.gpus_per_node};
  for (int64_t sp64 : divisors(world)) {
    const int sp = static_cast<int>(sp64), dp = world / sp;
    for (const SequenceConfig& sequence : sequence_modes(sp)) {
      for (int shard : shard_groups) {
        if (!mesh_degrees_error(world, dp, sp, shard).empty()) continue;
        for (CheckpointMode ac : {CheckpointMode::kNone, CheckpointMode::kEvery, CheckpointMode::kFull}) {
          TrainConfig c = config;
          c.mesh.dp = dp;
          c.mesh.sp = sp;
          c.mesh.shard_group = shard == world ? 0 : shard;
          c.parallel.sequence.mode = sequence.mode;
          c.parallel.sequence.ulysses = sequence.ulysses;
          c.parallel.activation_checkpoint.mode = ac;
          search_micro_batches(c, dp, world, cluster, counts, plan);
        }
      }
    }
  }
  std::stable_sort(plan.fitting.begin(), plan.fitting.end(),
                   [](const Estimate& a, const Estimate& b) { return a.step_s < b.step_s; });
  return plan;
}

std::string describe_layout(const Estimate& e) {
  const auto& c = e.config;
  const int sp = c.mesh.sp, dp = c.mesh.dp_for(e.world);
  // "node" stays unresolved only in a layout estimate() refused: named as given.
  const int shard = c.mesh.shard_group > 0 ? int(c.mesh.shard_group) : e.world;
  if (c.mesh.shard_group.node()) return "dp " + std::to_string(dp) + " x sp " + std::to_string(sp) + ", HSDP by node";
  std::ostringstream out;
  out << "dp " << dp << " x sp " << sp;
  if (sp > 1) {
    const int u = c.parallel.sequence.ulysses_degree(sp);
    out << " (" << c.parallel.sequence.mode;
    if (c.parallel.sequence.mode == SpMode::kHybrid) out << " " << u << "x" << sp / u;
    out << ")";
  }
  out << ", " << (shard == e.world ? "FSDP" : "HSDP " + std::to_string(shard) + "x" + std::to_string(e.world / shard));
  const auto& ac = c.parallel.activation_checkpoint;
  out << ", ac " << (ac.mode == CheckpointMode::kEvery ? "every " + std::to_string(ac.every) : enum_name(ac.mode));
  out << ", " << c.data.micro_batches << " micro";
  if (c.data.micro_batches > 1) out << " (" << c.parallel.fsdp.grad_accumulation << ")";
  return out.str();
}

}  // namespace reel
