// Data: the generator is deterministic; the loader's order is a permutation, shares are
// disjoint, a restored position continues exactly; bad files get errors naming the file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "reel/data/loader.hpp"
#include "reel/data/physics_world.hpp"
#include "reel/data/video_file.hpp"
#include "reel/model/config.hpp"

namespace reel::test {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("reel_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string small_world(const std::string& name, int64_t clips = 40) {
  const auto path = temp_path(name);
  PhysicsWorldSpec spec;
  spec.clips = clips;
  spec.seed = 11;
  write_physics_world(path, spec);
  return path;
}

template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// A file that cannot be created says why: here, the folder it would go into is missing.
TEST(Data, AWriterThatCannotCreateItsFileNamesTheMissingFolder) {
  const std::string path = "/tmp/reel_no_such_folder_" + std::to_string(getpid()) + "/world.h5";
  try {
    VideoWriter writer(path, 1, 2, 8, 8, 3, 2, 10.0, "test");
    FAIL() << "created " << path;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist (create it first)"), std::string::npos) << e.what();
  }
}

TEST(Data, GeneratorIsDeterministicAndMoves) {
  PhysicsWorldSpec spec;
  spec.seed = 5;
  auto a = simulate_clip(spec, 3), b = simulate_clip(spec, 3), c = simulate_clip(spec, 4);
  EXPECT_TRUE(a.frames.equal(b.frames));
  EXPECT_TRUE(a.actions.equal(b.actions));
  EXPECT_FALSE(a.frames.equal(c.frames));
  EXPECT_FALSE(a.frames[0].equal(a.frames[1])) << "balls must move";
  EXPECT_LE(a.actions.abs().max().item<float>(), 1.0f);
  // Whole files too, and they are in the schema.
  const auto p1 = small_world("gen1.h5", 6), p2 = small_world("gen2.h5", 6);
  VideoReader r1(p1), r2(p2);
  EXPECT_EQ(r1.info().clips, 6);
  EXPECT_EQ(r1.info().action_dim, 2);
  EXPECT_DOUBLE_EQ(r1.info().fps, 10.0);
  auto c1 = r1.read({0, 5}), c2 = r2.read({0, 5});
  EXPECT_TRUE(c1.frames.equal(c2.frames));
  EXPECT_TRUE(c1.frames[1].equal(simulate_clip(
                                     [] {
                                       PhysicsWorldSpec s;
                                       s.seed = 11;
                                       return s;
                                     }(),
                                     5)
                                     .frames));
  std::filesystem::remove(p1);
  std::filesystem::remove(p2);
}

TEST(Data, LoaderOrderIsAPermutationAndSharesAreDisjoint) {
  const auto path = small_world("order.h5");
  LoaderConfig c;
  c.path = path;
  c.global_batch = 8;
  c.count = 32;
  c.seed = 1;
  SampleLoader whole(c);
  auto o0 = whole.order(0), o1 = whole.order(1);
  EXPECT_EQ(std::set<int64_t>(o0.begin(), o0.end()).size(), 32u);
  EXPECT_EQ(*std::max_element(o0.begin(), o0.end()), 31);
  EXPECT_NE(o0, o1) << "each epoch reshuffles";
  // Two data-parallel shares of one global batch: disjoint halves, together the batch.
  c.shares = 2;
  c.share = 0;
  SampleLoader s0(c);
  c.share = 1;
  SampleLoader s1(c);
  for (int step = 0; step < 6; ++step) {  // crosses the epoch boundary (32 / 8 = 4 batches)
    auto g = whole.next(), a = s0.next(), b = s1.next();
    std::vector<int64_t> joined = a.sample_ids;
    joined.insert(joined.end(), b.sample_ids.begin(), b.sample_ids.end());
    EXPECT_EQ(joined, g.sample_ids) << "step " << step;
    EXPECT_TRUE(at::cat({a.at("frames"), b.at("frames")}).equal(g.at("frames")));
    EXPECT_EQ(a.after, g.after);
  }
  EXPECT_EQ(whole.position().epoch, 1);
  std::filesystem::remove(path);
}

TEST(Data, RestoredPositionContinuesExactlyWhateverTheShares) {
  const auto path = small_world("restore.h5");
  LoaderConfig c;
  c.path = path;
  c.global_batch = 4;
  c.seed = 9;
  SampleLoader first(c);
  for (int i = 0; i < 13; ++i) first.next();  // 40 / 4 = 10 batches per epoch: now in epoch 1
  const DataPosition saved = first.position();
  auto expected = first.next();
  SampleLoader resumed(c, saved);
  auto got = resumed.next();
  EXPECT_EQ(got.sample_ids, expected.sample_ids);
  EXPECT_TRUE(got.at("frames").equal(expected.at("frames")));
  // The same position resumed by two shares reads the same global batch.
  c.shares = 2;
  c.share = 1;
  SampleLoader half(c, saved);
  auto h = half.next();
  EXPECT_EQ(h.sample_ids, std::vector<int64_t>(expected.sample_ids.begin() + 2, expected.sample_ids.end()));
  std::filesystem::remove(path);
}

// A step of 8 clips read as one micro-batch or as two of 4 sees the same clips, across
// epoch ends too: 36 clips hold 4 whole steps, so both drop the same last 4 (before, the
// two-micro-batch reader ended its epochs a micro-batch later, and a run resumed at
// another world size with data.micro_batch saw other clips from the first epoch end on).
TEST(Data, AStepSeesTheSameClipsWhateverItsMicroBatches) {
  const auto path = small_world("steps.h5");
  LoaderConfig one;
  one.path = path;
  one.global_batch = 8;
  one.count = 36;
  one.seed = 3;
  LoaderConfig two = one;
  two.global_batch = 4;
  two.step_clips = 8;
  SampleLoader whole(one), halves(two);
  for (int step = 0; step < 10; ++step) {  // 4 steps per epoch: two epoch ends
    auto a = halves.next(), b = halves.next();
    std::vector<int64_t> joined = a.sample_ids;
    joined.insert(joined.end(), b.sample_ids.begin(), b.sample_ids.end());
    EXPECT_EQ(joined, whole.next().sample_ids) << "step " << step;
    EXPECT_EQ(b.after, whole.position()) << "step " << step;
  }
  two.step_clips = 6;  // not a whole number of micro-batches
  EXPECT_THROW(SampleLoader bad(two), std::invalid_argument);
  std::filesystem::remove(path);
}

// Writes an HDF5 file with one dataset of the given type and dims (and the schema attrs).
void write_bad(const std::string& path, const char* name, hid_t type, std::vector<hsize_t> dims, bool with_actions) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  auto make = [&](const char* n, hid_t t, std::vector<hsize_t> d) {
    hid_t s = H5Screate_simple(int(d.size()), d.data(), nullptr);
    H5Dclose(H5Dcreate2(f, n, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s);
  };
  make(name, type, dims);
  if (with_actions) make("/actions", H5T_IEEE_F32LE, {dims[0], dims[1], 2});
  int version = 1;
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "schema_version", H5T_NATIVE_INT, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &version);
  H5Aclose(a);
  H5Sclose(s);
  H5Fclose(f);
}

TEST(Data, BadFilesGetErrorsNamingTheFileAndTheClip) {
  const auto missing = temp_path("missing.h5");
  write_bad(missing, "/frames", H5T_STD_U8LE, {2, 8, 32, 32, 3}, false);
  expect_error([&] { VideoReader r(missing); }, {missing, "missing dataset /actions"});

  const auto rank = temp_path("rank.h5");
  write_bad(rank, "/frames", H5T_STD_U8LE, {2, 8, 32, 32}, true);
  expect_error([&] { VideoReader r(rank); }, {rank, "/frames must be rank 5"});

  const auto dtype = temp_path("dtype.h5");
  write_bad(dtype, "/frames", H5T_IEEE_F32LE, {2, 8, 32, 32, 3}, true);
  expect_error([&] { VideoReader r(dtype); }, {dtype, "uint8"});

  const auto good = small_world("truncate.h5", 20);
  const auto size = std::filesystem::file_size(good);
  std::filesystem::resize_file(good, size / 2);
  expect_error(
      [&] {
        VideoReader r(good);
        r.read({19});
      },
      {good});

  expect_error([&] { VideoReader r(temp_path("nope.h5")); }, {"no such file"});

  const auto fine = small_world("range.h5", 3);
  VideoReader r(fine);
  expect_error([&] { r.read({7}); }, {fine, "clip 7"});
  const auto cfg = model_preset("tiny");
  expect_error([&] { check_data_geometry(cfg, 7, 16, 16, 3, 2, fine); }, {fine, "T=7", "pt=2"});
  expect_error([&] { check_data_geometry(cfg, 8, 14, 16, 3, 2, fine); }, {"H=14", "ph=4"});
  expect_error([&] { check_data_geometry(cfg, 8, 16, 18, 3, 2, fine); }, {"W=18", "pw=4"});
  LoaderConfig c;
  c.path = fine;
  c.global_batch = 3;
  c.shares = 2;
  expect_error([&] { SampleLoader l(c); }, {"does not divide over 2"});
  for (const auto& p : {missing, rank, dtype, good, fine}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace reel::test
