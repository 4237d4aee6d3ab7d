// GPU communication: CUDA tensors through the MPI backend (staged through host memory,
// any number of ranks sharing one GPU) and the NCCL backend (one NCCL communicator per
// rank over MPI_COMM_SELF — NCCL refuses two ranks on one GPU — and the world when every
// rank has a GPU of its own). Skipped, with the reason, where there is no GPU.
#include <gtest/gtest.h>

#include "tests/dist/collective_data.hpp"
#include "tests/support/test_env.hpp"
#ifdef REEL_HAVE_NCCL
#include <ATen/cuda/Sleep.h>
#include "reel/dist/abort_registry.hpp"
#include "reel/dist/error.hpp"
#include "reel/dist/nccl_communicator.hpp"
#endif

#include <chrono>

namespace reel::test {
namespace {

#define REEL_REQUIRE_GPU()                                                               \
  if (!at::hasCUDA() || at::getNumGPUs() == 0)                                           \
  GTEST_SKIP() << "no CUDA device on this machine: GPU communication is checked on the " \
                  "GPU machine (scripts/gpu/run.sh)"

at::TensorOptions cuda(at::ScalarType t) {
  return at::TensorOptions(t).device(at::kCUDA, runtime().info().device_index);
}

TEST(GpuMpi, StagedCollectivesOnCudaTensors) {
  REEL_REQUIRE_GPU();
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t)) {
      SCOPED_TRACE(std::string(c10::toString(t)) + " n=" + std::to_string(n));
      auto x = rank_input(w.rank(), n, t).to(cuda(t).device());
      w.all_reduce(x);
      EXPECT_TRUE(x.cpu().equal(expected_sum(w.size(), n, t)));
      auto all = at::empty({w.size() * n}, cuda(t));
      w.all_gather(rank_input(w.rank(), n, t).to(cuda(t).device()), all);
      EXPECT_TRUE(all.cpu().narrow(0, 0, n).equal(rank_input(0, n, t)));
      auto got = at::empty({n}, cuda(t));
      const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
      w.sendrecv(rank_input(w.rank(), n, t).to(cuda(t).device()), next, got, prev);
      EXPECT_TRUE(got.cpu().equal(rank_input(prev, n, t)));
    }
  }
}

#ifdef REEL_HAVE_NCCL
// Checks every NCCL call on comm against the local reference.
void check_nccl_collectives(Communicator& c) {
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t)) {
      SCOPED_TRACE(std::string(c10::toString(t)) + " n=" + std::to_string(n));
      auto x = rank_input(c.rank(), n, t).to(c.device());
      c.all_reduce(x);
      EXPECT_TRUE(x.cpu().equal(expected_sum(c.size(), n, t)));
      auto all = at::empty({c.size() * n}, x.options());
      c.all_gather(rank_input(c.rank(), n, t).to(c.device()), all);
      EXPECT_TRUE(all.cpu().narrow(0, c.rank() * n, n).equal(rank_input(c.rank(), n, t)));
      auto mine = at::empty({n}, x.options());
      c.reduce_scatter(rank_input(c.rank(), c.size() * n, t).to(c.device()), mine);
      EXPECT_TRUE(mine.cpu().equal(expected_sum(c.size(), n, t, c.rank() * n)));
      auto a2a = rank_input(c.rank(), c.size() * n, t).to(c.device());
      c.all_to_all(a2a, a2a);  // in place goes through a copy on NCCL
      auto b = rank_input(c.rank(), n, t).to(c.device());
      c.broadcast(b, 0);
      EXPECT_TRUE(b.cpu().equal(rank_input(0, n, t)));
      if (at::isFloatingType(t)) {
        auto avg = rank_input(c.rank(), n, t).to(c.device());
        c.all_reduce(avg, ReduceOp::kAvg);
        EXPECT_TRUE(
            at::allclose(avg.cpu().to(at::kDouble), expected_sum(c.size(), n, at::kDouble) / c.size(), 1e-2, 1e-2));
      }
    }
  }
  c.barrier();
}

TEST(GpuNccl, SelfCommunicatorCollectivesAndStreamOrdering) {
  REEL_REQUIRE_GPU();
  auto self = NcclCommunicator::create(MPI_COMM_SELF);
  check_nccl_collectives(*self);
  // Work queued on the caller's stream before the call is seen by NCCL (stream ordering):
  // the fill below is asynchronous on the current stream.
  auto big = at::empty({1 << 24}, cuda(at::kFloat));
  big.fill_(3.0f);
  self->all_reduce(big);
  EXPECT_EQ(big.sum().item<double>(), 3.0 * (1 << 24));
  // The async form overlapped with compute on the current stream.
  auto overlap = at::ones({1 << 22}, cuda(at::kFloat));
  auto work = self->all_reduce_async(overlap);
  auto m = at::randn({2048, 2048}, cuda(at::kFloat));
  for (int i = 0; i < 4; ++i) m = at::mm(m, m).tanh();
  work->wait();  // orders this stream; the sum below runs after the all-reduce
  EXPECT_EQ(overlap.sum().item<double>(), double(1 << 22));
  work->synchronize();
  EXPECT_TRUE(work->completed());
}

// Stream-aware Work: wait() makes the current stream wait for the collective and returns
// without the host waiting for it; the kernels queued after it see its result; the
// caller may free its input at once (the allocator knows the NCCL stream uses it);
// synchronize() is what blocks the host.
TEST(GpuNccl, WaitOrdersTheStreamAndLeavesTheHostFree) {
  REEL_REQUIRE_GPU();
  auto self = NcclCommunicator::create(MPI_COMM_SELF);
  auto x = at::ones({1 << 20}, cuda(at::kFloat));
  at::cuda::sleep(int64_t{2} << 30);  // ~1 s of GPU time on the current stream, before the call
  auto work = self->all_reduce_async(x);
  const auto start = std::chrono::steady_clock::now();
  work->wait();
  const double host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(host_s, 0.1) << "wait() blocked the host behind the GPU";
  EXPECT_FALSE(work->completed()) << "the collective should still be queued behind the sleep";
  x.mul_(2);  // queued on the current stream: after the all-reduce
  EXPECT_EQ(x.sum().item<double>(), 2.0 * (1 << 20));
  work->synchronize();
  EXPECT_TRUE(work->completed());
  // An input freed right after the call is not reused before the collective read it.
  auto y = at::full({1 << 20}, 5.0f, cuda(at::kFloat)), out = at::empty({1 << 20}, cuda(at::kFloat));
  at::cuda::sleep(int64_t{1} << 29);
  auto w2 = self->all_reduce_async(y, out, ReduceOp::kSum);
  y = at::Tensor();
  auto reuse = at::zeros({1 << 20}, cuda(at::kFloat));  // would take y's block if it were free
  w2->wait();
  EXPECT_EQ(out.sum().item<double>(), 5.0 * (1 << 20));
  EXPECT_EQ(reuse.sum().item<double>(), 0.0);
}

TEST(GpuNccl, CpuTensorIsRejected) {
  REEL_REQUIRE_GPU();
  auto self = NcclCommunicator::create(MPI_COMM_SELF);
  try {
    self->all_reduce(at::zeros({4}));
    FAIL() << "CPU tensor accepted by NCCL";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("nccl backend"), std::string::npos) << e.what();
  }
}

// A fault on one NCCL communicator aborts every NCCL communicator of the process: each
// later call throws the first fault's reason, and destroying them does not hang.
TEST(GpuNccl, OneFaultAbortsEveryCommunicatorOfTheProcess) {
  REEL_REQUIRE_GPU();
  auto a = NcclCommunicator::create(MPI_COMM_SELF);
  auto b = NcclCommunicator::create(MPI_COMM_SELF);
  a->set_label("first");
  b->set_label("second");
  auto x = at::ones({16}, cuda(at::kFloat));
  a->all_reduce(x);
  b->all_reduce(x);
  const auto aborted = AbortRegistry::process().abort_all("injected fault");
  EXPECT_EQ(aborted.size(), 2u);
  for (auto* c : {a.get(), b.get()}) {
    try {
      c->all_reduce(x);
      ADD_FAILURE() << c->label() << " ran a collective after the abort";
    } catch (const DistError& e) {
      EXPECT_NE(std::string(e.what()).find("injected fault"), std::string::npos) << e.what();
    }
  }
  a.reset();  // destroying aborted communicators returns at once
  b.reset();
  AbortRegistry::process().rearm();  // the tests after this one start clean
  auto c = NcclCommunicator::create(MPI_COMM_SELF);
  c->all_reduce(x);
  EXPECT_EQ(x.sum().item<double>(), 16.0);
}

TEST(GpuNccl, WorldCommunicatorWhenEveryRankHasItsOwnGpu) {
  REEL_REQUIRE_GPU();
  if (static_cast<int>(at::getNumGPUs()) < runtime().info().local_size) {
    GTEST_SKIP() << "NCCL needs one GPU per rank: " << at::getNumGPUs() << " GPU(s) for " << runtime().info().local_size
                 << " local ranks";
  }
  auto nccl_world = NcclCommunicator::create(MPI_COMM_WORLD);
  check_nccl_collectives(*nccl_world);
}
#endif

}  // namespace
}  // namespace reel::test
