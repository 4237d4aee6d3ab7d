// main() of reel's test binaries: starts MPI through reel's Runtime, runs the tests, and
// makes the exit code reflect a failure on any rank (mpirun then fails the CTest entry).
// Only rank 0 prints the full GoogleTest report; other ranks print their failures.
#include <gtest/gtest.h>
#include <mpi.h>

#include "reel/dist/watchdog.hpp"

#include <iostream>
#include <memory>

#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {
std::unique_ptr<Runtime> g_runtime;  // lives for the whole test binary

// Prints only failed assertions, prefixed with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::cerr << "[rank " << rank_ << "] " << (r.file_name() ? r.file_name() : "?") << ":" << r.line_number() << ": "
              << r.summary() << std::endl;
  }

 private:
  int rank_;
};
}  // namespace

Runtime& runtime() { return *g_runtime; }

}  // namespace reel::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // A hang in a test ends the test binary (the watchdog's dump says where), not CTest's timeout.
  reel::Watchdog::set_hang_handler([](const std::string&) { MPI_Abort(MPI_COMM_WORLD, 1); });
  reel::RuntimeConfig config;
  config.backend = reel::BackendKind::kMpi;
  reel::test::g_runtime = std::make_unique<reel::Runtime>(config);
  const int rank = reel::test::runtime().info().world_rank;
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new reel::test::FailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS();
  // Every rank learns whether any rank failed, so all exit alike.
  auto flag = at::full({1}, failed ? 1.0f : 0.0f);
  reel::test::world().all_reduce(flag, reel::ReduceOp::kMax);
  failed = flag.item<float>() != 0.0f;
  // CTest reports a GPU entry as skipped only on this line (SKIP_REGULAR_EXPRESSION):
  // printed when every case skipped and none failed, so that one skipped case never
  // hides another's failure, nor the whole entry's.
  const auto* unit = ::testing::UnitTest::GetInstance();
  if (!failed && rank == 0 && unit->test_to_run_count() > 0 &&
      unit->skipped_test_count() == unit->test_to_run_count()) {
    std::cout << "[reel] every test case was skipped" << std::endl;
  }
  reel::test::g_runtime.reset();
  return failed ? 1 : 0;
}
