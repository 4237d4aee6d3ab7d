// parallelize() and FSDP refuse what they cannot run, before anything is sharded.
#include <gtest/gtest.h>

#include "reel/model/world_model.hpp"
#include "reel/parallel/parallelize.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

ModelConfig small() {
  ModelConfig cfg = model_preset("tiny");
  cfg.dim = 32;
  cfg.depth = 1;
  return cfg;
}

TEST(Parallelize, BadConfigurationsAreRejected) {
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  ParallelConfig bad_mode;
  bad_mode.activation_checkpoint.mode = "sometimes";
  WorldModel a(small(), ParamInit{at::kCPU, true});
  EXPECT_THROW(parallelize(*a, mesh, bad_mode, 1), std::invalid_argument);
  ParallelConfig bad_dtype;
  bad_dtype.fsdp.param_dtype = "float8";
  EXPECT_THROW(parallelize(*a, mesh, bad_dtype, 1), std::invalid_argument);
  ParallelConfig bad_bound;
  bad_bound.fsdp.max_gathered = 0;
  EXPECT_THROW(parallelize(*a, mesh, bad_bound, 1), std::invalid_argument);
  EXPECT_THROW(parse_dtype("float8"), std::invalid_argument);
  ParallelConfig bad_sp_mode;
  bad_sp_mode.sequence.mode = "spiral";
  EXPECT_THROW(parallelize(*a, mesh, bad_sp_mode, 1), std::invalid_argument);
}

TEST(Parallelize, MeshResolvesAndRejectsShardGroups) {
  const int n = world().size();
  EXPECT_THROW(ProcessMesh::create(runtime().world(), MeshConfig{0, 1, n + 1}), std::invalid_argument);
  auto fsdp = ProcessMesh::create(runtime().world(), MeshConfig{});
  EXPECT_EQ(fsdp.dp(), n);
  EXPECT_EQ(fsdp.shard_group().size(), n);
  EXPECT_EQ(fsdp.replica_group().size(), 1);
  EXPECT_FALSE(fsdp.hybrid());
  if (n > 1) {
    auto hsdp = ProcessMesh::create(runtime().world(), MeshConfig{0, 1, 1});
    EXPECT_EQ(hsdp.shard_group().size(), 1);
    EXPECT_EQ(hsdp.replica_group().size(), n);
    EXPECT_TRUE(hsdp.hybrid());
  }
}

}  // namespace
}  // namespace reel::test
