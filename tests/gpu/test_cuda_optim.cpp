// The fused AdamW kernel against the ATen reference update (fp32: 1e-6 relative).
#include <gtest/gtest.h>

#include "reel/optim/adamw.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

TEST(GpuOptim, FusedAdamWMatchesTheReferenceUpdate) {
  if (!at::hasCUDA() || at::getNumGPUs() == 0) {
    GTEST_SKIP() << "no CUDA device on this machine: the fused AdamW kernel is checked on the GPU machine";
  }
  const int64_t n = 100003;
  auto p_cpu = at::randn({n}), mask = (at::rand({n}) > 0.3).to(at::kFloat);
  auto p_gpu = p_cpu.cuda();
  AdamWConfig config;
  AdamWState s_cpu{at::zeros({n}), at::zeros({n})}, s_gpu{at::zeros({n}).cuda(), at::zeros({n}).cuda()};
  auto mask_gpu = mask.cuda();
  for (int step = 1; step <= 10; ++step) {
    auto g = at::randn({n});
    adamw_update(p_cpu, g, mask, s_cpu, config, 1e-3, step);
    adamw_update_cuda(p_gpu, g.cuda(), mask_gpu, s_gpu, config, 1e-3, step);
  }
  EXPECT_TRUE(at::allclose(p_gpu.cpu(), p_cpu, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(s_gpu.exp_avg_sq.cpu(), s_cpu.exp_avg_sq, 1e-6, 1e-9));
}

}  // namespace
}  // namespace reel::test
