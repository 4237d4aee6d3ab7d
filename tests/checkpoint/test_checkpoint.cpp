// State checkpoints through the Trainer: N steps + save + resume + N steps gives exactly
// (bitwise) the uninterrupted run on the same layout; a checkpoint saved by the whole
// world resumes on 1, 2 and 3 ranks and with HSDP within 1e-5; corruption of any kind is
// caught by verify and on load, naming the file and the dataset; `auto` falls back to the
// newest complete checkpoint; a writer that fails on one rank is reported on every rank,
// writes no manifest and loses no training state.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "reel/checkpoint/changes.hpp"
#include "reel/checkpoint/reader.hpp"
#include "reel/data/hdf5.hpp"
#include "reel/data/physics_world.hpp"
#include "reel/data/video_file.hpp"
#include "reel/model/flow.hpp"
#include "reel/train/trainer.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kHalf = 4;  // steps before and after the checkpoint

const std::string& scratch() {
  static const std::string dir = [] {
    auto d = fs::temp_directory_path() / ("reel_ckpt_" + std::to_string(::getppid()));
    if (world().rank() == 0) {
      fs::remove_all(d);
      fs::create_directories(d);
      PhysicsWorldSpec spec;
      spec.clips = 40;
      spec.seed = 3;
      write_physics_world((d / "world.h5").string(), spec);
    }
    world().barrier();
    return d.string();
  }();
  return dir;
}

// A fresh run directory named `name` (removed first by rank 0 of the world).
std::string fresh_dir(const std::string& name) {
  const std::string dir = scratch() + "/" + name;
  if (world().rank() == 0) fs::remove_all(dir);
  world().barrier();
  return dir;
}

TrainConfig config(const std::string& dir) {
  TrainConfig c;
  c.model_choice.dim = 64;
  c.model_choice.depth = 2;
  c.data.path = scratch() + "/world.h5";
  c.data.global_batch = 12;
  c.data.eval_clips = 4;
  c.data.seed = 9;
  c.run.steps = 2 * kHalf;
  c.run.dir = dir;
  c.run.seed = 21;
  c.schedule.lr = 2e-3;
  c.schedule.warmup_steps = 2;
  c.log.level = LogLevel::kWarn;
  c.resolve();
  return c;
}

struct Segment {
  std::vector<double> losses;  // of steps [first, last)
  std::map<std::string, at::Tensor> params;
};

Segment train(Trainer& t, int64_t first, int64_t last) {
  Segment r;
  for (int64_t s = first; s < last; ++s) r.losses.push_back(t.train_step(s).loss);
  r.params = t.fsdp().full_parameters();
  return r;
}

// The save is in flight while training goes on: updates after the snapshot must not
// reach the file, or the resumed run would differ.
TEST(Checkpoint, ResumeIsBitwiseOnTheSameLayout) {
  const auto c = config(fresh_dir("bitwise"));
  Segment whole, second;
  {
    Trainer t(c, runtime().world());
    train(t, 0, kHalf);
    t.save_checkpoint(kHalf);
    whole = train(t, kHalf, 2 * kHalf);  // the writer runs meanwhile
    t.settle_checkpoints(true);
  }
  {
    Trainer t(c, runtime().world());  // run.resume auto: the checkpoint above
    ASSERT_EQ(t.start_step(), kHalf);
    second = train(t, kHalf, 2 * kHalf);
  }
  EXPECT_EQ(second.losses, whole.losses);
  for (const auto& [name, value] : whole.params) EXPECT_TRUE(second.params.at(name).equal(value)) << name;
}

// Saved by the whole world; resumed by sub-worlds of 1, 2 and 3 ranks, and with HSDP.
TEST(Checkpoint, ResumesOnOtherLayoutsWithinTolerance) {
  const std::string dir = fresh_dir("reshard");
  const auto c = config(dir);
  Segment whole;
  {
    Trainer t(c, runtime().world());
    train(t, 0, kHalf);
    t.save_checkpoint(kHalf);
    t.settle_checkpoints(true);
    whole = train(t, kHalf, 2 * kHalf);
  }
  const std::string ckpt = dir + "/checkpoints/" + checkpoint_name(kHalf);
  struct Layout {
    int ranks, shard_group;
  };
  const int n = world().size();
  for (const Layout l : {Layout{1, 0}, Layout{2, 0}, Layout{3, 0}, Layout{n, n % 2 == 0 ? n / 2 : 1}}) {
    if (l.ranks > n || (l.shard_group > 0 && l.ranks < 2)) continue;
    const bool member = world().rank() < l.ranks;
    auto sub = runtime().world()->split(member ? 0 : 1, world().rank());
    if (member) {
      auto r = config(dir + "_resumed_" + std::to_string(l.ranks) + "_" + std::to_string(l.shard_group));
      r.run.resume = ckpt;
      r.mesh.shard_group = l.shard_group;
      Trainer t(r, sub);
      ASSERT_EQ(t.start_step(), kHalf);
      const auto got = train(t, kHalf, 2 * kHalf);
      for (size_t s = 0; s < got.losses.size(); ++s) {
        EXPECT_NEAR(got.losses[s], whole.losses[s], 1e-5 * whole.losses[s])
            << l.ranks << " ranks, shard group " << l.shard_group << ", step " << kHalf + s;
      }
      for (const auto& [name, value] : whole.params) {
        EXPECT_TRUE(at::allclose(got.params.at(name), value, 1e-5, 1e-6)) << name << " at " << l.ranks << " ranks";
      }
    }
    world().barrier();
  }
}

// Saved by an HSDP layout (the first replica of each shard group writes the shards, the
// others only the state), resumed by plain FSDP on the same ranks.
TEST(Checkpoint, SavedByHsdpResumesUnderFsdp) {
  const int n = world().size();
  if (n < 2) GTEST_SKIP() << "HSDP needs replica groups of size > 1: at least 2 ranks";
  const std::string dir = fresh_dir("from_hsdp");
  auto c = config(dir);
  c.mesh.shard_group = n % 2 == 0 ? n / 2 : 1;
  Segment whole;
  {
    Trainer t(c, runtime().world());
    ASSERT_TRUE(t.mesh().hybrid());
    train(t, 0, kHalf);
    t.save_checkpoint(kHalf);
    whole = train(t, kHalf, 2 * kHalf);
    t.settle_checkpoints(true);
  }
  auto r = config(dir + "_fsdp");
  r.run.resume = dir + "/checkpoints/" + checkpoint_name(kHalf);
  Trainer t(r, runtime().world());
  const auto got = train(t, kHalf, 2 * kHalf);
  for (size_t s = 0; s < got.losses.size(); ++s) EXPECT_NEAR(got.losses[s], whole.losses[s], 1e-5 * whole.losses[s]);
}

// Copies a complete checkpoint so that each corruption starts from a good one.
std::string copy_of(const std::string& ckpt, const std::string& name) {
  const std::string out = scratch() + "/corrupt_" + name + "/checkpoints/" + fs::path(ckpt).filename().string();
  fs::remove_all(scratch() + "/corrupt_" + name);
  fs::create_directories(fs::path(out).parent_path());
  fs::copy(ckpt, out, fs::copy_options::recursive);
  return out;
}

// Flips one byte inside a dataset's stored data (its offset in the file, from HDF5).
void flip_byte_in(const std::string& file, const std::string& dataset) {
  haddr_t offset;
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    H5Id d(H5Dopen2(f.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
    offset = d.valid() ? H5Dget_offset(d.get()) : HADDR_UNDEF;
  }
  ASSERT_NE(offset, HADDR_UNDEF) << file << " has no dataset " << dataset;
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(offset) + 5);
  char b = 0;
  io.read(&b, 1);
  b = static_cast<char>(b ^ 0x5a);
  io.seekp(static_cast<std::streamoff>(offset) + 5);
  io.write(&b, 1);
}

// Every corruption is caught both by verify() and by loading, naming the file.
void expect_caught(const std::string& ckpt, const std::string& expect) {
  std::string message;
  try {
    CheckpointReader reader(ckpt);
    reader.state();  // what loading reads first
    const auto problems = reader.verify();
    ASSERT_FALSE(problems.empty()) << "verify found nothing in " << ckpt;
    message = problems.front();
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(expect), std::string::npos) << message;
}

TEST(Checkpoint, CorruptionIsCaughtNamingTheFileAndDataset) {
  const std::string dir = fresh_dir("corruption");
  const auto c = config(dir);
  {
    Trainer t(c, runtime().world());
    train(t, 0, 2);
    t.save_checkpoint(2);
    t.settle_checkpoints(true);
  }
  const std::string ckpt = dir + "/checkpoints/" + checkpoint_name(2);
  if (world().rank() == 0) {
    EXPECT_TRUE(CheckpointReader(ckpt).verify().empty()) << "a fresh checkpoint verifies";
    auto flipped = copy_of(ckpt, "flip");
    flip_byte_in(flipped + "/rank0.h5", "/params/block0.qkv.weight");
    expect_caught(flipped, "rank0.h5 dataset /params/block0.qkv.weight: checksum mismatch");
    auto truncated = copy_of(ckpt, "truncate");
    fs::resize_file(truncated + "/rank0.h5", fs::file_size(truncated + "/rank0.h5") / 2);
    expect_caught(truncated, "rank0.h5: ");
    auto deleted = copy_of(ckpt, "delete");
    fs::remove(deleted + "/rank" + std::to_string(world().size() - 1) + ".h5");
    expect_caught(deleted, "missing (listed in the manifest)");
    auto no_manifest = copy_of(ckpt, "nomanifest");
    fs::remove(no_manifest + "/manifest.json");
    expect_caught(no_manifest, "manifest.json: missing");
    auto edited = copy_of(ckpt, "edited");
    std::ifstream in(edited + "/manifest.json");
    auto j = nlohmann::json::parse(in);
    in.close();
    j["files"][0]["datasets"][0]["crc32"] = j["files"][0]["datasets"][0]["crc32"].get<uint32_t>() ^ 1u;
    std::ofstream(edited + "/manifest.json") << j.dump();
    expect_caught(edited, "checksum mismatch");
    auto moved = copy_of(ckpt, "state");
    std::ifstream in2(moved + "/manifest.json");
    auto k = nlohmann::json::parse(in2);
    in2.close();
    k["train"]["data_cursor"] = k["train"]["data_cursor"].get<int64_t>() + 12;
    std::ofstream(moved + "/manifest.json") << k.dump();
    expect_caught(moved, "training state differs");
    auto garbage = copy_of(ckpt, "garbage");
    std::ofstream(garbage + "/manifest.json") << "{ not json";
    expect_caught(garbage, "manifest.json: not valid JSON");
  }
  world().barrier();
}

TEST(Checkpoint, AutoFallsBackToTheNewestCompleteCheckpoint) {
  const std::string dir = fresh_dir("fallback");
  const auto c = config(dir);
  Segment at2;
  {
    Trainer t(c, runtime().world());
    at2 = train(t, 0, 2);
    t.save_checkpoint(2);
    train(t, 2, 4);
    t.save_checkpoint(4);  // finishes step 2's first
    t.settle_checkpoints(true);
  }
  if (world().rank() == 0) {
    flip_byte_in(dir + "/checkpoints/" + checkpoint_name(4) + "/rank0.h5", "/exp_avg/block0.qkv.weight");
    fs::create_directories(dir + "/checkpoints/.tmp_" + checkpoint_name(6));  // a save that never finished
  }
  world().barrier();
  {
    Trainer t(c, runtime().world());
    EXPECT_EQ(t.start_step(), 2);
    // Wholly step 2's state (a corrupt range of step 4 read first leaves nothing behind).
    for (const auto& [name, value] : t.fsdp().full_parameters()) EXPECT_TRUE(value.equal(at2.params.at(name))) << name;
  }  // the run directory's lock goes with it
  auto r = c;
  r.run.resume = dir + "/checkpoints/" + checkpoint_name(4);  // asked for by path: refused, not replaced
  try {
    Trainer refused(r, runtime().world());
    ADD_FAILURE() << "a corrupt checkpoint asked for by path was loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot resume from checkpoint " + r.run.resume), std::string::npos)
        << e.what();
  }
}

// A run directory holds one run: a second Trainer into it is refused while the first
// lives (naming the holder), and allowed once it is gone.
TEST(Checkpoint, ARunDirectoryHoldsOneRunAtATime) {
  const std::string dir = fresh_dir("one_run");
  const auto c = config(dir);
  {
    Trainer first(c, runtime().world());
    try {
      Trainer second(c, runtime().world());
      ADD_FAILURE() << "a second run into a run directory in use was allowed";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("is in use by another reel train (host "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(", pid "), std::string::npos) << e.what();
    }
  }
  Trainer again(c, runtime().world());  // the lock went with the first Trainer
  EXPECT_EQ(again.start_step(), 0);
}

TEST(Checkpoint, AWriterFailingOnOneRankLosesNoState) {
  if (world().size() < 2) GTEST_SKIP() << "a failure on one rank of several needs 2 ranks";
  const std::string dir = fresh_dir("writer_failure");
  const auto c = config(dir);
  Trainer t(c, runtime().world());
  train(t, 0, 2);
  // Rank 1 cannot write more than 4 KiB to a file (as on a full disk): its write fails.
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  if (world().rank() == 1) {
    struct rlimit small = old;
    small.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &small);
  }
  t.save_checkpoint(2);
  t.settle_checkpoints(true);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  world().barrier();
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/" + checkpoint_name(2))) << "no checkpoint from a failed save";
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/" + checkpoint_name(2) + "/manifest.json"));
  // Training goes on from its state, exactly as if nothing had happened; the next save
  // succeeds.
  const double loss = t.train_step(2).loss;
  Trainer reference(config(fresh_dir("writer_failure_reference")), runtime().world());
  train(reference, 0, 2);
  EXPECT_EQ(loss, reference.train_step(2).loss);
  t.save_checkpoint(3);
  t.settle_checkpoints(true);
  world().barrier();
  EXPECT_TRUE(CheckpointReader(dir + "/checkpoints/" + checkpoint_name(3)).verify().empty());
}

// A checkpoint asked for on one rank only (as a signal handler would) is taken by every
// rank after the same step.
TEST(Checkpoint, ARequestOnOneRankSavesOnAll) {
  const std::string dir = fresh_dir("request");
  auto c = config(dir);
  c.run.steps = 5;
  c.run.eval_every = 0;
  c.run.peak_flops = 1e11;  // no peak measurement
  Trainer t(c, runtime().world());
  t.add_step_hook([&](const StepResult& r) {
    if (r.step == 2 && world().rank() == world().size() - 1) t.request_checkpoint();
  });
  t.fit();
  world().barrier();
  // Learnt in step 3's loss reduction, saved after step 3; the end of the run saves step 5.
  EXPECT_TRUE(CheckpointReader(dir + "/checkpoints/" + checkpoint_name(3)).verify().empty());
  EXPECT_TRUE(CheckpointReader(dir + "/checkpoints/" + checkpoint_name(5)).verify().empty());
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/" + checkpoint_name(2)));
  std::ifstream latest(dir + "/checkpoints/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, checkpoint_name(5));
}

const auto* const kRemoveScratch = remove_at_end(scratch);

// docs/checkpoint.md's recipe for the held-out noise, run in Python (torch.Generator seeded
// with the splitmix64 mix_seed of run.seed 7, step 2**64 - 1 and the clip, then the normal
// draws in order), gave these values for clips 36 and 37 of the tiny model with x0 = 0.
TEST(Checkpoint, HeldOutNoiseFollowsTheDocumentedRecipe) {
  const ModelConfig cfg;
  const auto b = make_flow_batch(at::zeros({2, cfg.tokens(), cfg.patch_dim()}), {36, 37}, -1, 7, cfg);
  EXPECT_FLOAT_EQ(b.t[0][2].item<float>(), 0.295043766f);
  EXPECT_FLOAT_EQ(b.t[1][3].item<float>(), 0.335975915f);
  EXPECT_FLOAT_EQ(b.x_t[0][40][5].item<float>(), 0.135385737f);
  EXPECT_FLOAT_EQ(b.x_t[1][63][95].item<float>(), 0.235643253f);
}

// The data identity's hash: SHA-256 itself (FIPS 180-2's examples, the long one fed in
// uneven pieces), and what the writer stores equals a reading of every clip.
TEST(Checkpoint, ContentHashIsSha256OfTheClips) {
  auto sha = [](const std::string& text, size_t piece) {
    Sha256 h;
    for (size_t i = 0; i < text.size(); i += piece) h.update(text.data() + i, std::min(piece, text.size() - i));
    return h.hex_digest();
  };
  EXPECT_EQ(sha("", 1), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha("abc", 1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 7),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha(std::string(1000000, 'a'), 997), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  if (world().rank() != 0) return;
  VideoReader reader(scratch() + "/world.h5");
  ASSERT_EQ(reader.info().content_sha256.size(), 64u);
  EXPECT_EQ(reader.compute_content_sha256(), reader.info().content_sha256);
  // Clips written out of order: no hash stored (reel computes one when it trains).
  const std::string path = scratch() + "/unordered.h5";
  {
    VideoWriter w(path, 2, 2, 8, 8, 3, 2, 10.0, "test");
    w.write(1, at::zeros({2, 8, 8, 3}, at::kByte), at::zeros({2, 2}));
    w.write(0, at::ones({2, 8, 8, 3}, at::kByte), at::zeros({2, 2}));
    w.close();
  }
  EXPECT_EQ(VideoReader(path).info().content_sha256, "");
}

// The classes of docs/checkpoint.md: model keys refused (all named), trajectory keys
// warned, layout and bookkeeping keys informed; a data file with other clips refused
// unless allowed, a moved one followed.
TEST(Checkpoint, ResumeChangesAreClassified) {
  TrainConfig a = config(scratch() + "/a"), b = a;
  b.schedule.lr = 1e-3;
  b.run.dir = scratch() + "/b";
  b.mesh.sp = 2;
  b.model_choice.dim = 32;
  b.model_choice.depth = 1;
  std::map<std::string, ChangeClass> kinds;
  const auto changes = config_changes(config_ini(a), config_ini(b));
  for (const auto& c : changes) kinds[c.key] = c.kind;
  EXPECT_EQ(kinds.at("optim.lr"), ChangeClass::kTrajectory);
  EXPECT_EQ(kinds.at("run.dir"), ChangeClass::kInfo);
  EXPECT_EQ(kinds.at("parallel.sp"), ChangeClass::kInfo);
  EXPECT_EQ(kinds.at("model.dim"), ChangeClass::kRefused);
  EXPECT_EQ(kinds.size(), 5u);
  const std::string refusal = model_change_refusal(changes, "CKPT");
  EXPECT_NE(refusal.find("model.depth is 2 in the checkpoint, 1 in this configuration"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("model.dim is 64 in the checkpoint, 32 in this configuration"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("overwrite"), std::string::npos) << refusal;

  TrainState saved;
  saved.data_clips = 40;
  saved.data_sha256 = std::string(64, 'a');
  const DataIdentity same{"/new/w.h5", 40, saved.data_sha256}, other{"/new/w.h5", 40, std::string(64, 'b')};
  EXPECT_NE(
      check_data_identity(saved, "/old/w.h5", same, false, "CKPT").info.find("data file moved: /old/w.h5 -> /new/w.h5"),
      std::string::npos);
  const auto refused = check_data_identity(saved, "/old/w.h5", other, false, "CKPT");
  EXPECT_NE(refused.refusal.find(std::string(64, 'b')), std::string::npos) << refused.refusal;
  EXPECT_NE(refused.refusal.find("--run.allow_data_change true"), std::string::npos) << refused.refusal;
  const auto allowed = check_data_identity(saved, "/old/w.h5", other, true, "CKPT");
  EXPECT_TRUE(allowed.refusal.empty());
  EXPECT_FALSE(allowed.warning.empty());
}

// config.ini records each mode by its name, as runs written before the modes were enums
// did: their run directories and checkpoints read and resume as before.
TEST(Checkpoint, TheConfigurationRecordsModesByTheirNames) {
  TrainConfig c = config(scratch() + "/names");
  c.schedule.decay = LrDecay::kConstant;
  const auto ini = parse_config_ini(config_ini(c));
  const std::map<std::string, std::string> names = {{"model.attention", "causal"},
                                                    {"model.mlp", "gelu"},
                                                    {"parallel.sp_mode", "ulysses"},
                                                    {"parallel.sp_balance", "zigzag"},
                                                    {"parallel.activation_checkpoint", "none"},
                                                    {"parallel.prefetch", "auto"},
                                                    {"parallel.param_dtype", "auto"},
                                                    {"parallel.reduce_dtype", "float32"},
                                                    {"parallel.grad_accumulation", "sharded"},
                                                    {"optim.decay", "constant"},
                                                    {"run.nonfinite", "skip"},
                                                    {"dist.backend", "auto"},
                                                    {"log.level", "warn"}};
  for (const auto& [key, name] : names) EXPECT_EQ(ini.at(key), name) << key;
  // A constant learning rate does not depend on the run's length: more steps change nothing.
  TrainConfig longer = c;
  longer.run.steps += 10;
  const auto changes = config_changes(config_ini(c), config_ini(longer));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, ChangeClass::kInfo) << changes[0].why;
}

}  // namespace
}  // namespace reel::test
