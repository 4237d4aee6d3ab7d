// Bad input gets a clear error, before anything is sent; the communicator stays usable.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "reel/dist/abort_registry.hpp"
#include "reel/dist/logging.hpp"
#include "reel/dist/mpi_communicator.hpp"
#include "tests/support/test_env.hpp"
#include "tests/support/throws.hpp"

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
  expect_invalid([&] { w.reduce_scatter(at::zeros({5 * w.size() + 1}), at::zeros({5})); }, {"reduce_scatter", rank});
  expect_invalid([&] { w.all_to_all(at::zeros({w.size() * 2}), at::zeros({w.size() * 3})); },
                 {"all_to_all", "equal numel"});
  expect_invalid([&] { w.all_reduce_async(at::zeros({4}), at::zeros({5}), ReduceOp::kSum); }, {"all_reduce", "numel"});
  expect_invalid([&] { w.all_gather(at::zeros({2}), at::zeros({2 * w.size()}, at::kLong)); }, {"all_gather", "dtype"});
  expect_invalid([&] { w.all_reduce(at::zeros({4}, at::kLong), ReduceOp::kAvg); }, {"avg", "floating"});
  expect_invalid([&] { w.all_reduce(at::zeros({4}, at::kBool)); }, {"not supported"});
  expect_invalid([&] { w.all_reduce(at::zeros({4, 4}).t()); }, {"contiguous"});
  expect_invalid([&] { w.broadcast(at::zeros({2}), w.size()); }, {"broadcast", "root"});
  expect_invalid([&] { w.send(at::zeros({2}), -1); }, {"send", "peer"});
  expect_invalid([&] { w.recv(at::zeros({2}), 0, -3); }, {"recv", "tag"});
  expect_invalid([&] { w.all_reduce(at::Tensor()); }, {"undefined"});
  std::vector<int64_t> ones(w.size(), 1);
  expect_invalid(
      [&] {
        w.all_to_all_async(at::zeros({w.size(), 2}), at::zeros({w.size(), 3}), ones, ones);
      },
      {"all_to_all_v", "rows"});
  expect_invalid(
      [&] {
        w.all_to_all_async(at::zeros({w.size()}), at::zeros({w.size()}), std::vector<int64_t>(w.size() + 1, 0), ones);
      },
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
  EXPECT_EQ(thrown<std::invalid_argument>([] { parse_enum<BackendKind>("dist.backend", "infiniband"); }),
            "dist.backend must be auto, mpi or nccl, got 'infiniband'");
  EXPECT_EQ(parse_enum<BackendKind>("dist.backend", "nccl"), BackendKind::kNccl);
  if (nccl_usable()) return;
  RuntimeConfig config;
  config.backend = BackendKind::kNccl;
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
  const auto dir = std::filesystem::temp_directory_path() / ("reel_log_test_" + std::to_string(::getpid()));
  LogConfig config;
  config.dir = dir.string();
  config.level = LogLevel::kDebug;
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
  EXPECT_THROW(parse_enum<LogLevel>("log.level", "verbose"), std::invalid_argument);
}

// A log file that cannot be written (here /dev/full: every flush fails with ENOSPC) is an
// error the owner sees through check(), not a line on stderr that the run goes past.
TEST(Errors, LogFileThatCannotBeWrittenIsReportedByCheck) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("reel_full_log_" + std::to_string(::getpid()) + "_" + std::to_string(world().rank()));
  std::filesystem::create_directories(dir);
  const auto file = dir / ("rank" + std::to_string(world().rank()) + ".log");
  std::filesystem::create_symlink("/dev/full", file);
  LogConfig config;
  config.dir = dir.string();
  Logger log(config, world().rank());
  log.info("fits in the stdio buffer");
  EXPECT_NO_THROW(log.check());  // nothing has reached the file yet
  log.flush();
  try {
    log.check();
    ADD_FAILURE() << "a failed flush went unreported";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("No space left on device"), std::string::npos) << msg;
  }
  std::filesystem::remove_all(dir);
}

// The first fault aborts every registered communicator once, with the first reason;
// unregistered ones are left alone, and one made after the fault is aborted at once.
TEST(Errors, AbortRegistryAbortsEveryCommunicatorOnce) {
  AbortRegistry registry;
  std::vector<int> aborts(4, 0);
  auto entry = [&](int i) {
    return [&aborts, i] {
      ++aborts[i];
      return "comm" + std::to_string(i);
    };
  };
  const auto a = registry.add(entry(0));
  registry.add(entry(1));
  const auto c = registry.add(entry(2));
  registry.remove(c);  // destroyed normally before the fault
  EXPECT_EQ(registry.reason(), "");
  const auto aborted = registry.abort_all("all_reduce: timed out");
  EXPECT_EQ(aborted, (std::vector<std::string>{"comm0", "comm1"}));
  EXPECT_EQ(aborts, (std::vector<int>{1, 1, 0, 0}));
  EXPECT_TRUE(registry.abort_all("a later fault").empty());  // each abort runs once
  EXPECT_EQ(registry.reason(), "all_reduce: timed out");     // the first reason stays
  registry.remove(a);                                        // harmless after the abort
  registry.add(entry(3));
  EXPECT_EQ(aborts, (std::vector<int>{1, 1, 0, 1}));
  registry.rearm();
  registry.add(entry(3));
  EXPECT_EQ(aborts[3], 1);
}

// Concurrent faults and destructions: no abort runs twice, none runs after its remove().
TEST(Errors, AbortRegistryRacesBetweenFaultsAndDestruction) {
  for (int round = 0; round < 50; ++round) {
    AbortRegistry registry;
    constexpr int kComms = 16;
    std::vector<std::atomic<int>> aborts(kComms);
    std::vector<std::atomic<bool>> removed(kComms);
    std::vector<uint64_t> ids;
    std::atomic<int> late{0};
    for (int i = 0; i < kComms; ++i) {
      ids.push_back(registry.add([&, i] {
        if (removed[i].load()) ++late;
        ++aborts[i];
        return std::string("c");
      }));
    }
    std::thread destroyer([&] {
      for (int i = 0; i < kComms; i += 2) {
        registry.remove(ids[i]);
        removed[i] = true;
      }
    });
    std::thread fault1([&] { registry.abort_all("one"); });
    std::thread fault2([&] { registry.abort_all("two"); });
    destroyer.join();
    fault1.join();
    fault2.join();
    EXPECT_EQ(late.load(), 0);
    for (int i = 0; i < kComms; ++i) {
      EXPECT_LE(aborts[i].load(), 1) << i;
      if (i % 2) EXPECT_EQ(aborts[i].load(), 1) << i;
    }
  }
}

}  // namespace
}  // namespace reel::test
