// What a rank holds, measured (resident memory and tensor storage), not computed from
// the layout: building the model costs no parameter memory; constructing FSDP at the 1b
// width never holds more than this rank's shards plus one unit; during backward at most
// one parameter's .grad exists (gradients live in the shards). (After a step only the
// shards remain: tests/train/test_parity.cpp, AfterAStepARankHoldsOnlyItsShards.)
#include <gtest/gtest.h>
#include <malloc.h>

#include "reel/dist/process_mesh.hpp"
#include "reel/model/world_model.hpp"
#include "reel/parallel/parallelize.hpp"
#include "reel/plan/estimate.hpp"
#include "reel/train/memory.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

constexpr int64_t kMiB = 1 << 20;

int64_t fp32_bytes(WorldModelImpl& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return 4 * n;
}

// The 1b width (2048, SwiGLU, 1536-element patches) with 4 blocks: 1.2 GiB of fp32 (small
// enough that a broken deferral fails the test rather than exhausting the machine).
ModelConfig wide_config() {
  ModelConfig cfg = model_preset("1b");
  cfg.depth = 4;
  return cfg;
}

TEST(Memory, ADeferredModelHoldsNoParameterMemory) {
  const auto before = resident_bytes();
  WorldModel model(wide_config(), ParamInit{at::kCPU, /*deferred=*/true});
  const auto grown = resident_bytes() - before;
  EXPECT_GT(fp32_bytes(*model), int64_t(1) << 30) << "the structure of a 1 GiB model";
  for (const auto& p : model->named_parameters()) EXPECT_FALSE(is_materialized(p.value())) << p.key();
  EXPECT_LT(grown, 16 * kMiB) << "building the structure took " << grown / kMiB << " MiB";
}

TEST(Memory, ConstructionNeverHoldsMoreThanTheShardsPlusOneUnit) {
  const ModelConfig cfg = wide_config();
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  world().barrier();
  if (!reset_peak_resident()) GTEST_SKIP() << "this kernel does not let a process reset its resident high-water mark";
  const int64_t before = resident_bytes();
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true, 3});
  auto fsdp = parallelize(*model, mesh, ParallelConfig{}, 3).fsdp;
  const int64_t peak = peak_resident_bytes() - before;
  const int64_t whole = fp32_bytes(*model), shards = fsdp->shard_bytes();  // parameter + gradient shards
  int64_t unit = 0;
  for (auto& u : fsdp->units()) unit = std::max(unit, 4 * u->layout().padded);
  const int64_t bound = shards + unit + 64 * kMiB;  // + allocator and library slack
  if (world().rank() == 0) {
    std::cout << "[memory] " << world().size() << " rank(s): construction peak " << peak / kMiB << " MiB, shards "
              << shards / kMiB << " MiB, largest unit " << unit / kMiB << " MiB, whole model " << whole / kMiB
              << " MiB\n";
  }
  EXPECT_LE(peak, bound) << "peak " << peak / kMiB << " MiB over shards + one unit " << bound / kMiB << " MiB";
  for (const auto& p : model->named_parameters()) EXPECT_FALSE(is_materialized(p.value())) << p.key();
  for (auto& u : fsdp->units()) EXPECT_EQ(u->transient_bytes(), 0) << u->layout().name;
}

// The 1b width, 3 blocks, a clip of 8 tokens: the parameters dominate (0.9 GiB of fp32
// gradients), activations are noise.
ModelConfig wide_short_config() {
  ModelConfig cfg = wide_config();
  cfg.depth = 3;
  cfg.frames = 4, cfg.height = cfg.width = 32, cfg.context_groups = 1;
  return cfg;
}

// Resident high-water mark above what the shards hold, over a step of 4 micro-batches
// (one clip per rank each) with gradient accumulation `mode`; and the planner's estimate
// of the same (gathered units and unreduced gradients + activations).
std::pair<int64_t, double> accumulation_peak(GradAccumulation mode) {
  const ModelConfig cfg = wide_short_config();
  constexpr int64_t kMicro = 4;
  ParallelConfig pc;
  pc.fsdp.grad_accumulation = mode;
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true, 3});
  auto fsdp = parallelize(*model, mesh, pc, 3).fsdp;
  auto tokens = at::randn({1, cfg.tokens(), cfg.patch_dim()});
  auto t = at::rand({1, cfg.groups()});
  auto actions = at::randn({1, cfg.frames, cfg.action_dim});
  world().barrier();
  reset_peak_resident();
  const int64_t before = resident_bytes();
  for (int64_t m = 0; m < kMicro; ++m) {
    fsdp->set_micro_batch(m, kMicro);
    fsdp->forward([&] { return model->forward(tokens, t, actions); }).pow(2).sum().backward();
    fsdp->finish_backward();
  }
  const int64_t peak = peak_resident_bytes() - before;
  TrainConfig c;
  c.model = cfg;
  c.data.global_batch = kMicro * world().size();
  c.data.micro_batches = kMicro;
  c.data.eval_clips = 0;
  c.parallel = pc;
  const auto e = estimate(c, world().size(), cluster_preset("cpu"), ModelShape::of(cfg));
  return {peak, e.gathered + e.activations};
}

// What the MPI library itself takes, beyond its arguments, for one reduce-scatter of
// `numel` fp32 elements (Open MPI works through temporaries of the whole buffer): the
// planner counts what reel holds, not the library's internals.
int64_t reduce_scatter_overhead(int64_t numel) {
  const int64_t n = world().size(), shard = (numel + n - 1) / n;
  auto send = at::ones({shard * n}), out = at::empty({shard});
  world().barrier();
  reset_peak_resident();
  const int64_t before = resident_bytes();
  world().reduce_scatter(send, out);
  return peak_resident_bytes() - before;
}

TEST(Memory, ShardedGradientAccumulationHoldsOnlyGradientShards) {
  if (world().size() != 2) {
    GTEST_SKIP() << "measured at 2 ranks (one rank adds its gradients straight into the shard in both modes; "
                    "4 ranks on this machine's 2 cores would take a minute more to measure the same)";
  }
  if (!reset_peak_resident()) GTEST_SKIP() << "this kernel does not let a process reset its resident high-water mark";
  // Large buffers from their own mappings, returned to the system when freed: otherwise
  // glibc raises its mmap threshold after the first run frees them, and the second run
  // reuses resident heap pages, which the high-water mark cannot see.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const auto [sharded, sharded_plan] = accumulation_peak(GradAccumulation::kSharded);
  const auto [unsharded, unsharded_plan] = accumulation_peak(GradAccumulation::kUnsharded);
  WorldModel shape(wide_short_config(), ParamInit{at::kCPU, /*deferred=*/true});
  const int64_t whole = fp32_bytes(*shape);  // every unit's fp32 gradient
  const auto units = ModelShape::of(wide_short_config());
  const int64_t mpi = reduce_scatter_overhead(std::max(units.block, units.root));
  // What unsharded accumulation holds and sharded does not: every unit's unreduced fp32
  // gradient but the root's and one block's (which both modes hold during a backward).
  const int64_t kept = 4 * (units.parameters() - units.root - units.block);
  if (world().rank() == 0) {
    std::cout << "[memory] " << world().size() << " ranks, 4 micro-batches: sharded peak " << sharded / kMiB
              << " MiB (plan " << int64_t(sharded_plan) / kMiB << "), unsharded " << unsharded / kMiB << " MiB (plan "
              << int64_t(unsharded_plan) / kMiB << "), whole fp32 gradients " << whole / kMiB
              << " MiB; MPI's own temporaries for the largest unit's reduce-scatter " << mpi / kMiB << " MiB\n";
  }
  const int64_t slack = 64 * kMiB + mpi;  // allocator, and the library's own buffers
  EXPECT_LE(sharded, int64_t(sharded_plan) + slack) << "sharded accumulation over the planner's estimate";
  EXPECT_LE(unsharded, int64_t(unsharded_plan) + slack) << "unsharded accumulation over the planner's estimate";
  EXPECT_GT(unsharded - sharded, kept * 3 / 4)
      << "sharded accumulation should save the other blocks' gradients (" << kept / kMiB << " MiB)";
}

TEST(Memory, BackwardKeepsAtMostOneParameterGradient) {
  ModelConfig cfg = model_preset("tiny");
  cfg.depth = 3;
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true, 5});
  auto fsdp = parallelize(*model, mesh, ParallelConfig{}, 5).fsdp;
  int most = 0;
  auto count = [&] {
    int n = 0;
    for (const auto& p : model->parameters()) n += p.grad().defined();
    most = std::max(most, n);
  };
  // Count when backward reaches the input (every unit done) and after it: without the
  // sink, every parameter would hold its .grad by then.
  auto tokens = at::randn({2, cfg.tokens(), cfg.patch_dim()});
  auto t = at::rand({2, cfg.groups()});
  auto actions = at::randn({2, cfg.frames, cfg.action_dim});
  tokens.requires_grad_(true);
  auto out = fsdp->forward([&] { return model->forward(tokens, t, actions); });
  tokens.register_hook([&](const at::Tensor&) { count(); });
  out.pow(2).sum().backward();
  count();  // after backward, before finish_backward clears the last one
  EXPECT_LE(most, 1) << "parameters holding a full gradient in .grad at once";
  fsdp->finish_backward();
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

}  // namespace
}  // namespace reel::test
