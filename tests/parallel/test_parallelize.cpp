// parallelize() and FSDP refuse what they cannot run, before anything is sharded.
#include <gtest/gtest.h>

#include "reel/dist/logging.hpp"
#include "reel/model/world_model.hpp"
#include "reel/parallel/parallelize.hpp"
#include "tests/support/test_env.hpp"
#include "tests/support/throws.hpp"

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
  ParallelConfig bad_every;
  bad_every.activation_checkpoint.mode = CheckpointMode::kEvery;
  bad_every.activation_checkpoint.every = 0;
  WorldModel a(small(), ParamInit{at::kCPU, true});
  EXPECT_THROW(parallelize(*a, mesh, bad_every, 1), std::invalid_argument);
  ParallelConfig bad_bound;
  bad_bound.fsdp.max_gathered = 0;
  EXPECT_THROW(parallelize(*a, mesh, bad_bound, 1), std::invalid_argument);
  ParallelConfig bad_hybrid;
  bad_hybrid.sequence.ulysses = 2;  // a Ulysses degree applies to hybrid only
  EXPECT_THROW(parallelize(*a, mesh, bad_hybrid, 1), std::invalid_argument);
}

// A mode is one of its names table's: anything else is refused where it is parsed, naming
// the option and the choices; the names print back as they parse.
TEST(Parallelize, ModesParseAndPrintByTheirNames) {
  EXPECT_THROW(parse_enum<CheckpointMode>("parallel.activation_checkpoint", "sometimes"), std::invalid_argument);
  EXPECT_THROW(parse_enum<DtypeChoice>("parallel.param_dtype", "float8"), std::invalid_argument);
  EXPECT_EQ(thrown<std::invalid_argument>([] { parse_enum<SpMode>("parallel.sp_mode", "spiral"); }),
            "parallel.sp_mode must be ulysses, ring or hybrid, got 'spiral'");
  EXPECT_EQ(parse_enum<DtypeChoice>("parallel.reduce_dtype", "bfloat16"), DtypeChoice::kBFloat16);
  EXPECT_EQ(scalar_type(DtypeChoice::kBFloat16, at::kFloat), at::kBFloat16);
  EXPECT_EQ(scalar_type(DtypeChoice::kAuto, at::kHalf), at::kHalf);
  EXPECT_EQ(parse_enum<AutoSwitch>("parallel.prefetch", "true"), AutoSwitch::kOn);
  EXPECT_STREQ(enum_name(AutoSwitch::kOff), "false");
  EXPECT_EQ(enum_choices<GradAccumulation>(" | "), "sharded | unsharded");
  EXPECT_EQ(cat(SpBalance::kContiguous), "contiguous");
}

// FSDP's one-rank aliasing: the rule FsdpUnit follows and reel plan counts.
TEST(Parallelize, OneRankAliasesItsShardInFloat32Only) {
  EXPECT_TRUE(fsdp_aliases(1, at::kFloat, at::kFloat, 1).params);
  EXPECT_TRUE(fsdp_aliases(1, at::kFloat, at::kFloat, 1).grads);
  EXPECT_FALSE(fsdp_aliases(2, at::kFloat, at::kFloat, 1).params);
  EXPECT_FALSE(fsdp_aliases(1, at::kBFloat16, at::kFloat, 1).params);
  EXPECT_TRUE(fsdp_aliases(1, at::kBFloat16, at::kFloat, 1).grads);
  EXPECT_FALSE(fsdp_aliases(1, at::kFloat, at::kFloat, 2).grads);  // HSDP replicas reduce
  EXPECT_TRUE(fsdp_aliases(1, at::kFloat, at::kFloat, 2).params);
  EXPECT_FALSE(fsdp_aliases(1, at::kFloat, at::kHalf, 1).grads);
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
