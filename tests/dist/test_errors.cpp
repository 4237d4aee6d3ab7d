// Bad input gets a clear error, before anything is sent; the communicator stays usable.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <unistd.h>

#include <filesystem>
#include <numeric>
#include <fstream>

#include "dist/logging.hpp"
#include "dist/mpi_communicator.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

// Runs fn, expecting std::invalid_argument whose message contains every fragment.
template <typename Fn>
void expect_invalid(Fn&& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(Errors, LocalMismatchesNameTheCallTheRankAndTheSizes) {
  auto& w = world();
  const std::string rank = "rank " + std::to_string(w.rank());
  expect_invalid([&] { w.all_gather(at::zeros({3}), at::zeros({3 * w.size() + 1})); },
                 {"all_gather", rank, "must have"});
  expect_invalid([&] { w.reduce_scatter(at::zeros({5 * w.size() + 1}), at::zeros({5})); },
                 {"reduce_scatter", rank});
  expect_invalid([&] { w.all_to_all(at::zeros({w.size() * 2}), at::zeros({w.size() * 3})); },
                 {"all_to_all", "equal numel"});
  expect_invalid([&] { w.all_reduce_async(at::zeros({4}), at::zeros({5}), ReduceOp::kSum); },
                 {"all_reduce", "numel"});
  expect_invalid([&] { w.all_gather(at::zeros({2}), at::zeros({2 * w.size()}, at::kLong)); },
                 {"all_gather", "dtype"});
  expect_invalid([&] { w.all_reduce(at::zeros({4}, at::kLong), ReduceOp::kAvg); },
                 {"avg", "floating"});
  expect_invalid([&] { w.all_reduce(at::zeros({4}, at::kBool)); }, {"not supported"});
  expect_invalid([&] { w.all_reduce(at::zeros({4, 4}).t()); }, {"contiguous"});
  expect_invalid([&] { w.broadcast(at::zeros({2}), w.size()); }, {"broadcast", "root"});
  expect_invalid([&] { w.send(at::zeros({2}), -1); }, {"send", "peer"});
  expect_invalid([&] { w.recv(at::zeros({2}), 0, -3); }, {"recv", "tag"});
  expect_invalid([&] { w.all_reduce(at::Tensor()); }, {"undefined"});
  std::vector<int64_t> ones(w.size(), 1);
  expect_invalid([&] { w.all_to_all_async(at::zeros({w.size(), 2}), at::zeros({w.size(), 3}), ones, ones); },
                 {"all_to_all_v", "rows"});
  expect_invalid([&] { w.all_to_all_async(at::zeros({w.size()}), at::zeros({w.size()}),
                                           std::vector<int64_t>(w.size() + 1, 0), ones); },
                 {"all_to_all_v", "one split per rank"});
  // Still usable afterwards: nothing was sent.
  auto x = at::ones({3});
  w.all_reduce(x);
  EXPECT_TRUE(x.eq(w.size()).all().item<bool>());
}

TEST(Errors, TensorOnTheWrongDevice) {
  auto& w = world();
  auto meta = at::empty({4}, at::TensorOptions().device(at::kMeta));
  expect_invalid([&] { w.all_reduce(meta); }, {"meta", "mpi backend"});
  if (!at::hasCUDA()) return;  // mixing devices needs a GPU
  auto gpu = at::zeros({2 * w.size()}, at::TensorOptions().device(at::kCUDA));
  expect_invalid([&] { w.all_gather(at::zeros({2}), gpu); }, {"all_gather", "cuda"});
}

TEST(Errors, SizesThatDifferAcrossRanksAreCaughtWithVerification) {
  CommOptions options;
  options.verify_consistency = true;
  auto checked = MpiCommunicator::create(MPI_COMM_WORLD, options);
  if (checked->size() == 1) GTEST_SKIP() << "needs two ranks to disagree";
  // Rank 0 reduces 10 elements, the others 12: a hang or corruption without the check.
  auto t = at::zeros({checked->rank() == 0 ? 10 : 12});
  expect_invalid([&] { checked->all_reduce(t); }, {"ranks disagree", "numel 10", "numel 12"});
  // all_to_all_v whose receive splits do not match what the senders send.
  std::vector<int64_t> send(checked->size(), 1), recv(checked->size(), 1);
  if (checked->rank() == 0) recv[1] = 2;
  const auto rows = std::accumulate(recv.begin(), recv.end(), int64_t{0});
  expect_invalid([&] { checked->all_to_all_async(at::zeros({checked->size()}), at::zeros({rows}), send, recv); },
                 {"rank 0 expects 2 rows from rank 1, which sends 1"});
  auto ok = at::ones({5});
  checked->all_reduce(ok);
  EXPECT_TRUE(ok.eq(checked->size()).all().item<bool>());
}

TEST(Errors, UnknownBackendAndUnusableNccl) {
  EXPECT_THROW(parse_backend("gloo"), std::invalid_argument);
  try {
    RuntimeConfig config;
    config.backend = "infiniband";
    Runtime bad(config);
    FAIL() << "unknown backend accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected auto, mpi or nccl"), std::string::npos);
  }
  if (nccl_usable()) return;
  RuntimeConfig config;
  config.backend = "nccl";
  try {
    Runtime no_gpu(config);
    FAIL() << "nccl without a GPU accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nccl"), std::string::npos) << e.what();
  }
}

TEST(Runtime, ThreadsAndLaunchInfo) {
  const auto& info = runtime().info();
  EXPECT_GE(info.threads, 1);
  EXPECT_EQ(at::get_num_threads(), info.threads);
  EXPECT_EQ(info.world_size, world().size());
  EXPECT_GE(info.local_rank, 0);
  EXPECT_LT(info.local_rank, info.local_size);
  EXPECT_EQ(info.launcher, info.world_size > 1 ? "mpirun" : info.launcher);
  EXPECT_GE(default_threads(1), default_threads(64));
  EXPECT_GE(default_threads(1 << 20), 1);
}

TEST(Logging, EveryRankWritesItsOwnFileWithItsRank) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("reel_log_test_" + std::to_string(::getpid()));
  LogConfig config;
  config.dir = dir.string();
  config.level = "debug";
  {
    Logger log(config, world().rank());
    log.debug(cat("hello from ", world().rank()));
    log.flush();
  }
  std::ifstream in(dir / ("rank" + std::to_string(world().rank()) + ".log"));
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("[rank " + std::to_string(world().rank()) + "]"), std::string::npos) << line;
  EXPECT_NE(line.find("hello from " + std::to_string(world().rank())), std::string::npos) << line;
  std::filesystem::remove_all(dir);
  EXPECT_THROW(check_level("verbose"), std::invalid_argument);
}

}  // namespace
}  // namespace reel::test
