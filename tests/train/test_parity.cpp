// The Trainer (what `reel train` runs) against one plain rank: from the same
// configuration, every step's loss, every unit's reduced gradient shard (compared with
// the same slice of the 1-rank gradient, before clipping), the logged gradient norm, and
// the parameters at the end agree within 1e-5 — at every layout: plain FSDP, gradient
// accumulation, no reshard after forward, activation checkpointing (full, every other
// block), HSDP with replica groups of size > 1, no prefetch, and sequence parallelism
// (Ulysses, ring, hybrid) over dp x sp meshes. AdamW and clipping cancel
// a constant factor on the gradients, so the gradients themselves are compared: a
// SUM-vs-mean slip or double-counted replicas changes them by a factor of the rank count.
#include <gtest/gtest.h>
#include <unistd.h>
#include <algorithm>
#include <set>

#include <filesystem>

#include "reel/data/hdf5.hpp"
#include "reel/data/physics_world.hpp"
#include "reel/data/weights.hpp"
#include "reel/dist/logging.hpp"
#include "reel/model/flow.hpp"
#include "reel/train/model_spec.hpp"
#include "reel/train/throughput.hpp"
#include "reel/train/trainer.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_env.hpp"
#include "tests/support/throws.hpp"
#include "tests/train/parity_support.hpp"

namespace reel::test {
namespace {

constexpr double kTol = 1e-5;

// One data file and run directory for the whole binary, made by rank 0.
const std::string& scratch() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("reel_parity_" + std::to_string(::getppid()));
    if (world().rank() == 0) {
      std::filesystem::create_directories(d);
      PhysicsWorldSpec spec;
      spec.clips = 56;
      spec.seed = 2;
      write_physics_world((d / "world.h5").string(), spec);
    }
    world().barrier();
    return d.string();
  }();
  return dir;
}

// A small model and batch that divide over 1-4 data-parallel ranks (and, with 2
// micro-batches of the 24-clip batch, still do).
TrainConfig parity_config(int micro = 1) {
  TrainConfig c = parity_base(scratch() + "/world.h5", scratch() + "/run", micro);
  c.run.steps = 12;
  c.schedule.lr = 2e-3;
  c.schedule.warmup_steps = 3;
  c.resolve();
  return c;
}

void expect_parity(const TrainConfig& c) { test::expect_parity(c, world_reference_loss(), kTol); }

TEST(Parity, Fsdp) { expect_parity(parity_config()); }
// Gradient accumulation: sharded (each micro-batch reduce-scattered into the shard, the
// default) and unsharded (whole gradients kept, reduced once), with FSDP and HSDP (whose
// all-reduce over the replicas runs once per step, on the accumulated shard).
TEST(Parity, GradientAccumulation) { expect_parity(parity_config(2)); }
TEST(Parity, GradientAccumulationUnsharded) {
  auto c = parity_config(2);
  c.parallel.fsdp.grad_accumulation = GradAccumulation::kUnsharded;
  expect_parity(c);
}
TEST(Parity, GradientAccumulationHybridSharding) {
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "HSDP needs replica groups of size > 1: at least 2 ranks";
  for (GradAccumulation mode : {GradAccumulation::kSharded, GradAccumulation::kUnsharded}) {
    SCOPED_TRACE(enum_name(mode));
    auto c = parity_config(2);
    c.mesh.shard_group = hsdp_shard_group(n);
    c.parallel.fsdp.grad_accumulation = mode;
    c.parallel.fsdp.async_reduce = mode == GradAccumulation::kSharded ? AutoSwitch::kOn : AutoSwitch::kOff;
    expect_parity(c);
  }
}
TEST(Parity, NoReshardAfterForward) {
  auto c = parity_config();
  c.parallel.fsdp.reshard_after_forward = false;
  expect_parity(c);
}
TEST(Parity, ActivationCheckpointingFull) {
  auto c = parity_config();
  c.parallel.activation_checkpoint.mode = CheckpointMode::kFull;
  expect_parity(c);
}
TEST(Parity, ActivationCheckpointingEveryOtherBlock) {
  auto c = parity_config();
  c.parallel.activation_checkpoint.mode = CheckpointMode::kEvery;
  expect_parity(c);
}
TEST(Parity, HybridShardingWithReplicas) {
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "HSDP needs replica groups of size > 1: at least 2 ranks";
  auto c = parity_config();
  c.mesh.shard_group = hsdp_shard_group(n);  // 2 replicas (or n, for odd worlds)
  ASSERT_GT(n / c.mesh.shard_group, 1);
  expect_parity(c);
}
TEST(Parity, NoPrefetch) {
  auto c = parity_config();
  c.parallel.fsdp.prefetch = AutoSwitch::kOff;
  expect_parity(c);
}
// Asynchronous gradient reduction: the same gradients, losses and parameters as one rank,
// with FSDP, HSDP and gradient accumulation, and with the in-flight bound at one unit.
TEST(Parity, AsyncReduce) {
  auto c = parity_config();
  c.parallel.fsdp.async_reduce = AutoSwitch::kOn;
  expect_parity(c);
}
TEST(Parity, AsyncReduceHybridSharding) {
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "HSDP needs replica groups of size > 1: at least 2 ranks";
  auto c = parity_config();
  c.mesh.shard_group = hsdp_shard_group(n);
  c.parallel.fsdp.async_reduce = AutoSwitch::kOn;
  expect_parity(c);
}
TEST(Parity, AsyncReduceAccumulatingOneUnitInFlight) {
  auto c = parity_config(2);
  c.parallel.fsdp.async_reduce = AutoSwitch::kOn;
  c.parallel.fsdp.reduce_in_flight_mb = 0;
  expect_parity(c);
}

// The events of one backward, as FsdpModel records them ("backward U", "issue U",
// "finish U"), checked for the order asynchronous reduction promises.
std::vector<std::string> backward_events(AutoSwitch async, int64_t in_flight_mb, int shard_group = 0) {
  auto c = parity_config();
  c.mesh.shard_group = shard_group;
  c.parallel.fsdp.async_reduce = async;
  c.parallel.fsdp.reduce_in_flight_mb = in_flight_mb;
  Trainer trainer(c, runtime().world());
  trainer.fsdp().reduce_queue().record(true);
  trainer.forward_backward(0);
  auto events = trainer.fsdp().reduce_queue().events();
  trainer.fsdp().reduce_queue().record(false);
  return events;
}

size_t position(const std::vector<std::string>& events, const std::string& e) {
  const auto it = std::find(events.begin(), events.end(), e);
  EXPECT_EQ(std::count(events.begin(), events.end(), e), 1) << "'" << e << "' must happen exactly once";
  return static_cast<size_t>(it - events.begin());
}

TEST(AsyncReduce, ABlocksReductionIsInFlightWhileTheBlockBeforeItRunsItsBackward) {
  if (world().size() == 1) GTEST_SKIP() << "one rank has nothing to reduce (the gradients add into the shard)";
  const auto events = backward_events(AutoSwitch::kOn, 512);
  const int depth = static_cast<int>(parity_config().model.depth);
  ASSERT_GE(depth, 2);
  for (int k = 0; k < depth; ++k) {
    const std::string unit = "block" + std::to_string(k);
    const size_t backward = position(events, "backward " + unit), issue = position(events, "issue " + unit),
                 finish = position(events, "finish " + unit);
    EXPECT_LT(backward, issue) << unit;
    EXPECT_LT(issue, finish) << unit;
    if (k > 0) {  // in flight (issued, not waited) while block k-1's backward ran
      const size_t earlier = position(events, "backward block" + std::to_string(k - 1));
      EXPECT_LT(issue, earlier) << unit;
      EXPECT_LT(earlier, finish) << unit << " was waited before block" << k - 1 << "'s backward";
    }
  }
  EXPECT_EQ(position(events, "finish root") + 1, events.size()) << "the root, reduced last, is finished last";
}

// HSDP: block k's reduce-scatter is waited when block k-1's backward completes, and the
// all-reduce of its shard over the replicas issued right there, before block k-1's own
// reduce-scatter (one issue order on every rank); that all-reduce is still in flight
// while the next unit runs its backward. Shard groups of 1 and, at 4 ranks, of 2.
TEST(AsyncReduce, HsdpAllReduceIsInFlightWhileTheNextUnitRunsItsBackward) {
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "HSDP needs replicas: at least 2 ranks";
  const int depth = static_cast<int>(parity_config().model.depth);
  ASSERT_GE(depth, 2);
  for (const int group : {1, n % 2 == 0 ? n / 2 : 1}) {
    SCOPED_TRACE("shard groups of " + std::to_string(group));
    const auto events = backward_events(AutoSwitch::kOn, 512, group);
    auto at = [&](const std::string& e) { return position(events, e); };
    for (int k = 1; k < depth; ++k) {
      const std::string unit = "block" + std::to_string(k), before = "block" + std::to_string(k - 1);
      const std::string next = k >= 2 ? "block" + std::to_string(k - 2) : "root";  // after block k-1's backward
      EXPECT_LT(at("backward " + before), at("scattered " + unit)) << unit;
      EXPECT_EQ(at("scattered " + unit) + 1, at("replicate " + unit)) << unit;
      EXPECT_LT(at("replicate " + unit), at("issue " + before)) << unit << ": one issue order over both communicators";
      EXPECT_LT(at("replicate " + unit), at("backward " + next)) << unit;
      EXPECT_LT(at("backward " + next), at("finish " + unit))
          << unit << "'s all-reduce was waited before " << next << "'s backward";
    }
    int replicated = 0;
    for (const auto& e : events) replicated += e.rfind("replicate ", 0) == 0;
    EXPECT_EQ(replicated, depth + 1) << "one all-reduce over the replicas per unit";
  }
}

TEST(AsyncReduce, TheInFlightBoundAndTheBlockingModeHoldOneReductionAtATime) {
  if (world().size() == 1) GTEST_SKIP() << "one rank has nothing to reduce (the gradients add into the shard)";
  for (const auto& [async, mb] : {std::pair<AutoSwitch, int64_t>{AutoSwitch::kOn, 0}, {AutoSwitch::kOff, 512}}) {
    const auto events = backward_events(async, mb);
    int in_flight = 0, issued = 0;
    for (const auto& e : events) {
      in_flight += e.rfind("issue ", 0) == 0 ? 1 : e.rfind("finish ", 0) == 0 ? -1 : 0;
      issued += e.rfind("issue ", 0) == 0;
      EXPECT_LE(in_flight, 1) << "async_reduce " << async << ", " << mb << " MiB: two reductions in flight at " << e;
      EXPECT_GE(in_flight, 0) << e << " finished a reduction never issued";
    }
    EXPECT_EQ(in_flight, 0) << "a reduction was never finished";
    EXPECT_EQ(issued, parity_config().model.depth + 1) << "one reduction per unit";
  }
}

// Sequence parallelism at the layouts this world allows — (dp 1, sp n) and, at 4 ranks,
// (dp 2, sp 2) — with and without activation checkpointing. A loss normalised per rank
// instead of by the global target count, or a gradient averaged over the sp group,
// changes the gradients by a constant factor: they are compared directly.
void expect_sequence_parity(SpMode mode, int ulysses) {
  const int n = world().size();
  std::vector<std::pair<int, int>> layouts;  // (dp, sp)
  if (n > 1) layouts.push_back({1, n});
  if (n == 4) layouts.push_back({2, 2});
  int ran = 0;
  for (const auto& [dp, sp] : layouts) {
    for (CheckpointMode checkpointing : {CheckpointMode::kNone, CheckpointMode::kFull}) {
      auto c = parity_config();
      c.run.steps = 20;
      c.mesh.dp = dp;
      c.mesh.sp = sp;
      c.parallel.sequence.mode = mode;
      c.parallel.sequence.ulysses = ulysses;
      c.parallel.activation_checkpoint.mode = checkpointing;
      if (mode == SpMode::kHybrid && sp < 4) continue;  // needs ulysses and ring degrees both > 1
      c.resolve();
      // Heads that do not divide over the Ulysses degree are refused (test_sequence.cpp).
      if (c.model.heads % c.parallel.sequence.ulysses_degree(sp) != 0) continue;
      SCOPED_TRACE(cat(mode, " dp=", dp, " sp=", sp, " checkpointing ", checkpointing));
      expect_parity(c);
      ++ran;
    }
  }
  if (ran == 0) GTEST_SKIP() << mode << ": no layout of " << n << " rank(s) this model splits over";
}

TEST(Parity, SequenceParallelUlysses) { expect_sequence_parity(SpMode::kUlysses, 0); }
TEST(Parity, SequenceParallelRing) { expect_sequence_parity(SpMode::kRing, 0); }
TEST(Parity, SequenceParallelHybrid) { expect_sequence_parity(SpMode::kHybrid, 2); }

TEST(Parity, Bfloat16TracksFloat32) {
  auto c = parity_config();
  const auto reference = train_reference(c, world_reference_loss());
  c.parallel.fsdp.param_dtype = DtypeChoice::kBFloat16;
  c.parallel.fsdp.reduce_dtype = DtypeChoice::kBFloat16;
  Trainer trainer(c, runtime().world());
  for (int64_t step = 0; step < c.run.steps; ++step) {
    const double want = reference.steps[step].loss, got = trainer.train_step(step).loss;
    EXPECT_NEAR(got, want, 3e-2 * want) << "step " << step;
  }
}

TEST(Parity, ShardsEqualAOneRankInitialisation) {
  auto c = parity_config();
  Trainer trainer(c, runtime().world());
  const int rank = trainer.mesh().shard_group().rank();
  WorldModel whole(c.model, ParamInit{at::kCPU, false, c.run.seed});
  std::map<std::string, at::Tensor> values;
  for (const auto& p : whole->named_parameters()) values[p.key()] = p.value().detach();
  for (auto& unit : trainer.fsdp().units()) {
    EXPECT_TRUE(unit->shard().equal(reference_slice(unit->layout(), values, rank))) << unit->layout().name;
  }
}

TEST(Parity, AfterAStepARankHoldsOnlyItsShards) {
  auto c = parity_config();
  Trainer trainer(c, runtime().world());
  trainer.train_step(0);
  const int n = trainer.mesh().shard_group().size();
  for (auto& unit : trainer.fsdp().units()) {
    const auto& l = unit->layout();
    EXPECT_EQ(unit->transient_bytes(), 0) << l.name << ": gathered storage or gradient buffer left allocated";
    EXPECT_EQ(static_cast<int64_t>(unit->shard().storage().nbytes()), 4 * l.shard) << l.name;
    EXPECT_EQ(static_cast<int64_t>(unit->grad_shard().storage().nbytes()), 4 * l.shard) << l.name;
    EXPECT_LE(l.shard, l.numel / n + 1) << l.name << ": 1/" << n << " of the unit, plus padding";
  }
  for (const auto& p : trainer.model().named_parameters()) EXPECT_FALSE(is_materialized(p.value())) << p.key();
}

TEST(Parity, RepeatedRunsAreBitwiseIdentical) {
  auto run = [] {
    Trainer trainer(parity_config(), runtime().world());
    std::vector<double> losses;
    for (int64_t step = 0; step < 6; ++step) losses.push_back(trainer.train_step(step).loss);
    return losses;
  };
  EXPECT_EQ(run(), run());
}

TEST(Parity, WeightsRoundTripHoldsTheTrainedParameters) {
  auto c = parity_config();
  Trainer trainer(c, runtime().world());
  for (int64_t step = 0; step < 3; ++step) trainer.train_step(step);
  const std::string path = c.run.dir + "/roundtrip.h5";
  trainer.save_weights(path);
  const auto params = trainer.fsdp().full_parameters();
  EXPECT_EQ(read_weights_config(path).dim, c.model.dim);
  WorldModel loaded(read_weights_config(path), ParamInit{at::kCPU, true});
  load_weights(*loaded, path);
  for (const auto& p : loaded->named_parameters()) EXPECT_TRUE(p.value().equal(params.at(p.key()))) << p.key();
  {  // modes are stored by their names, as files written before they were enums hold them
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    std::string attention, mlp, time_sampling;
    EXPECT_TRUE(read_attribute(file.get(), "model.attention", attention) && attention == "causal") << attention;
    EXPECT_TRUE(read_attribute(file.get(), "model.mlp", mlp) && mlp == "gelu") << mlp;
    EXPECT_TRUE(read_attribute(file.get(), "model.time_sampling", time_sampling) && time_sampling == "group");
  }
  // Another architecture is refused with the file and the field named.
  ModelConfig other = c.model;
  other.depth += 1;
  WorldModel wrong(other);
  try {
    load_weights(*wrong, path);
    ADD_FAILURE() << "loaded weights of another architecture";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.depth"), std::string::npos) << e.what();
  }
}

// The data's split over dp data-parallel ranks: the Trainer's rules, which reel plan asks too.
TEST(Config, TheBatchAndHeldOutClipsMustSplitOverTheDataParallelRanks) {
  DataConfig d;
  d.global_batch = 16;
  d.micro_batches = 2;
  d.eval_clips = 4;
  EXPECT_EQ(d.layout_micro_batches(4), 2);
  EXPECT_TRUE(d.splits(2, 8));
  EXPECT_FALSE(d.splits(4, 8));
  std::string what = thrown<std::invalid_argument>([&] { d.layout_micro_batches(16); });
  EXPECT_NE(what.find("a micro-batch of 8 clips (data.global_batch 16 / 2 micro-batch(es)) does not divide over 16 "
                      "data-parallel ranks"),
            std::string::npos)
      << what;
  d.micro_batches = 1;
  what = thrown<std::invalid_argument>([&] { d.layout_micro_batches(8); });
  EXPECT_NE(what.find("data.eval_clips 4 must be 0 or at least dp=8"), std::string::npos) << what;
  d.micro_batch = 2;  // clips per rank: 16 / (2 x 4) = 2 micro-batches on 4 ranks
  EXPECT_EQ(d.layout_micro_batches(4), 2);
}

// MFU counts model FLOPs only; HFU adds one forward of each recomputed block.
TEST(Throughput, HardwareFlopsAddWhatActivationCheckpointingRecomputes) {
  ModelConfig cfg = model_preset("tiny");
  cfg.depth = 5;
  const double model = training_step_flops(cfg, 8), block = block_forward_flops(cfg, 8);
  ActivationCheckpointConfig ac;
  EXPECT_EQ(step_flops(model_spec("world"), cfg, 8, ac).model, model);
  EXPECT_EQ(step_flops(model_spec("world"), cfg, 8, ac).hardware, model);
  ac.mode = CheckpointMode::kFull;
  EXPECT_EQ(step_flops(model_spec("world"), cfg, 8, ac).model, model);
  EXPECT_DOUBLE_EQ(step_flops(model_spec("world"), cfg, 8, ac).hardware, model + 5 * block);
  ac.mode = CheckpointMode::kEvery;
  ac.every = 2;  // blocks 0, 2, 4
  EXPECT_DOUBLE_EQ(step_flops(model_spec("world"), cfg, 8, ac).hardware, model + 3 * block);
}

const auto* const kRemoveScratch = remove_at_end(scratch);

}  // namespace
}  // namespace reel::test
