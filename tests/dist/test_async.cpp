// Async forms: they progress while the caller computes, several may be outstanding, and
// Work handles keep their contract (idempotent wait, completion steps, errors).
#include <gtest/gtest.h>

#include <chrono>

#include "tests/dist/collective_data.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

TEST(Async, AllReduceProgressesWhileTheCallerComputes) {
  auto& w = world();
  const int64_t n = (int64_t{8} << 20) / 4 + 3;
  auto buf = rank_input(w.rank(), n, at::kFloat);
  auto work = w.all_reduce_async(buf);
  // Compute without touching the communicator; the operation must finish on its own
  // (MPI's non-blocking calls would not progress here: reel's queue thread does).
  auto a = at::randn({128, 128});
  const auto start = std::chrono::steady_clock::now();
  int rounds = 0;
  while (!work->completed()) {
    a = at::tanh(at::mm(a, a));
    ++rounds;
    ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60))
        << "async all_reduce made no progress during compute";
  }
  work->wait();
  EXPECT_TRUE(buf.equal(expected_sum(w.size(), n, at::kFloat)));
  EXPECT_EQ(work->error(), nullptr);
  std::cout << "[rank " << w.rank() << "] compute rounds overlapped: " << rounds << "\n";
}

TEST(Async, SeveralOutstandingWaitedInReverseOrder) {
  auto& w = world();
  const int64_t n = 100003;
  auto a = rank_input(w.rank(), n, at::kFloat);
  auto gathered = at::empty({w.size() * n}, at::kLong);
  auto b = rank_input(w.rank(), n, at::kLong);
  auto c = rank_input(w.rank(), n, at::kBFloat16);
  std::vector<WorkPtr> works = {w.all_reduce_async(a), w.all_gather_async(b, gathered),
                                w.broadcast_async(c, w.size() - 1), w.barrier_async()};
  for (auto it = works.rbegin(); it != works.rend(); ++it) (*it)->wait();
  EXPECT_TRUE(a.equal(expected_sum(w.size(), n, at::kFloat)));
  EXPECT_TRUE(gathered.narrow(0, 0, n).equal(rank_input(0, n, at::kLong)));
  EXPECT_TRUE(c.equal(rank_input(w.size() - 1, n, at::kBFloat16)));
  for (auto& work : works) {
    EXPECT_TRUE(work->completed());
    work->wait();         // idempotent
    work->synchronize();  // MPI: finished on the host already, nothing to wait for
  }
}

// Two communicators sharing their progress run their calls in one issue order: a small
// all-reduce issued on the second after a large one on the first completes after it
// (each on its own progress, the small one finishes first). The ranks issue both in the
// same order, so the shared order cannot deadlock; the results are exact.
TEST(Async, CommunicatorsSharingProgressRunInOneIssueOrder) {
  auto& w = world();
  auto first = w.split(0, w.rank()), second = w.split(0, w.rank());
  second->share_progress(*first);
  const int64_t big = (int64_t{32} << 20) / 4 + 3, small = 5;
  for (int round = 0; round < 3; ++round) {
    auto a = rank_input(w.rank(), big, at::kFloat), b = rank_input(w.rank(), small, at::kFloat);
    auto large = first->all_reduce_async(a);
    auto tiny = second->all_reduce_async(b);
    tiny->wait();
    EXPECT_TRUE(w.size() == 1 || large->completed()) << "round " << round << ": the later call finished first";
    large->wait();
    EXPECT_TRUE(a.equal(expected_sum(w.size(), big, at::kFloat)));
    EXPECT_TRUE(b.equal(expected_sum(w.size(), small, at::kFloat)));
  }
}

// A backend stand-in whose completion is controlled by the test.
class ManualWork : public Work {
 public:
  bool finished = false;
  bool fail = false;

 protected:
  void block() override {
    if (fail) throw std::runtime_error("backend failed");
  }
  bool test() override {
    if (finished && fail) throw std::runtime_error("backend failed");
    return finished;
  }
};

TEST(Async, WorkRunsStepsOnceAfterSuccessAndRethrowsErrors) {
  auto ok = std::make_shared<ManualWork>();
  int steps = 0;
  ok->then([&] { ++steps; });
  ok->then([&] { steps *= 10; });
  EXPECT_FALSE(ok->completed());
  ok->finished = true;
  EXPECT_TRUE(ok->completed());
  EXPECT_EQ(steps, 0) << "completed() must not run completion steps";
  ok->wait();
  ok->wait();
  EXPECT_EQ(steps, 10);

  auto bad = std::make_shared<ManualWork>();
  bad->fail = true;
  bad->then([&] { ++steps; });
  EXPECT_THROW(bad->wait(), std::runtime_error);
  EXPECT_THROW(bad->wait(), std::runtime_error);  // the same error again
  EXPECT_NE(bad->error(), nullptr);
  EXPECT_EQ(steps, 10) << "steps must not run after a failure";

  auto both = std::make_shared<AllOfWork>(std::vector<WorkPtr>{ok, bad});
  EXPECT_THROW(both->wait(), std::runtime_error);
}

}  // namespace
}  // namespace reel::test
