// The fused AdamW update: one pass over the shard per step (weight decay, both moments,
// bias correction, the update), fp32 throughout.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "reel/optim/adamw.hpp"

namespace reel {
namespace {

__global__ void adamw_kernel(float* p, const float* g, const float* mask, float* m, float* v, int64_t n, float lr,
                             float wd, float b1, float b2, float eps, float step_size, float inv_sqrt_bc2) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float gi = g[i];
  float pi = p[i] * (1.f - lr * wd * mask[i]);
  const float mi = b1 * m[i] + (1.f - b1) * gi;
  const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
  pi -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  p[i] = pi, m[i] = mi, v[i] = vi;
}

}  // namespace

void adamw_update_cuda(at::Tensor& param, const at::Tensor& grad, const at::Tensor& mask, AdamWState& state,
                       const AdamWConfig& c, double lr, int64_t step) {
  TORCH_CHECK(param.is_cuda() && param.scalar_type() == at::kFloat && param.is_contiguous(),
              "fused AdamW: fp32 CUDA shard");
  auto g = grad.to(at::kFloat).contiguous();
  const int64_t n = param.numel();
  if (n == 0) return;
  const double bc1 = 1 - std::pow(c.beta1, double(step)), bc2 = 1 - std::pow(c.beta2, double(step));
  const c10::cuda::CUDAGuard guard(param.device());
  constexpr int threads = 256;
  adamw_kernel<<<(n + threads - 1) / threads, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
      param.data_ptr<float>(), g.data_ptr<float>(), mask.data_ptr<float>(), state.exp_avg.data_ptr<float>(),
      state.exp_avg_sq.data_ptr<float>(), n, float(lr), float(c.weight_decay), float(c.beta1), float(c.beta2),
      float(c.eps), float(lr / bc1), float(1.0 / std::sqrt(bc2)));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace reel
