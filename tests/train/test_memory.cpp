// What a rank holds, measured (resident memory and tensor storage), not computed from
// the layout: building the model costs no parameter memory; constructing FSDP at the 1b
// width never holds more than this rank's shards plus one unit; during backward at most
// one parameter's .grad exists (gradients live in the shards). (After a step only the
// shards remain: tests/train/test_parity.cpp, AfterAStepARankHoldsOnlyItsShards.)
#include <gtest/gtest.h>

#include "dist/process_mesh.hpp"
#include "parallel/parallelize.hpp"
#include "tests/support/test_env.hpp"
#include "train/memory.hpp"

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
  auto out = fsdp->forward(tokens.requires_grad_(true), t, actions);
  tokens.register_hook([&](const at::Tensor&) { count(); });
  out.pow(2).sum().backward();
  count();  // after backward, before finish_backward clears the last one
  EXPECT_LE(most, 1) << "parameters holding a full gradient in .grad at once";
  fsdp->finish_backward();
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

}  // namespace
}  // namespace reel::test
