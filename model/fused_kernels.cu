// CUDA kernels for the adaLN-modulated LayerNorm and 3-D RoPE, forward and backward, as
// autograd functions. Statistics and arithmetic in fp32 whatever the storage dtype.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>

#include "model/ops.hpp"

namespace reel::cuda {
namespace {

constexpr int kThreads = 256;

// Sum of v over the block (kThreads threads); every thread gets the total.
__device__ float block_sum(float v, float* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  return total;
}

// One block per row of D: y = (x - mean) * rstd * (1 + scale) + shift.
template <typename T>
__global__ void modnorm_forward(const T* x, const T* shift, const T* scale, T* y, float* mean_out,
                                float* rstd_out, int64_t d, float eps) {
  __shared__ float shared[kThreads / 32];
  const int64_t row = blockIdx.x;
  x += row * d, shift += row * d, scale += row * d, y += row * d;
  float sum = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) sum += static_cast<float>(x[i]);
  const float mean = block_sum(sum, shared) / d;
  float var = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float c = static_cast<float>(x[i]) - mean;
    var += c * c;
  }
  const float rstd = rsqrtf(block_sum(var, shared) / d + eps);
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float h = (static_cast<float>(x[i]) - mean) * rstd;
    y[i] = static_cast<T>(h * (1.f + static_cast<float>(scale[i])) + static_cast<float>(shift[i]));
  }
  if (threadIdx.x == 0) mean_out[row] = mean, rstd_out[row] = rstd;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * (1 + scale);
// dscale = dy * xhat; dshift = dy.
template <typename T>
__global__ void modnorm_backward(const T* dy, const T* x, const T* scale, const float* mean_in,
                                 const float* rstd_in, T* dx, T* dscale, int64_t d) {
  __shared__ float shared[kThreads / 32];
  const int64_t row = blockIdx.x;
  dy += row * d, x += row * d, scale += row * d, dx += row * d, dscale += row * d;
  const float mean = mean_in[row], rstd = rstd_in[row];
  float sg = 0, sgx = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float xhat = (static_cast<float>(x[i]) - mean) * rstd;
    const float g = static_cast<float>(dy[i]) * (1.f + static_cast<float>(scale[i]));
    sg += g;
    sgx += g * xhat;
  }
  const float mg = block_sum(sg, shared) / d, mgx = block_sum(sgx, shared) / d;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float xhat = (static_cast<float>(x[i]) - mean) * rstd;
    const float g = static_cast<float>(dy[i]) * (1.f + static_cast<float>(scale[i]));
    dx[i] = static_cast<T>(rstd * (g - mg - xhat * mgx));
    dscale[i] = static_cast<T>(static_cast<float>(dy[i]) * xhat);
  }
}

// Rotates each pair (x[2i], x[2i+1]) of x [rows = B*H*L, hd] by sign * angle[l, i].
template <typename T>
__global__ void rope_kernel(const T* x, const float* cos, const float* sin, T* y, int64_t rows,
                            int64_t seq, int64_t pairs, float sign) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= rows * pairs) return;
  const int64_t row = idx / pairs, i = idx % pairs, l = row % seq;
  const float c = cos[l * pairs + i], s = sign * sin[l * pairs + i];
  const float a = static_cast<float>(x[2 * idx]), b = static_cast<float>(x[2 * idx + 1]);
  y[2 * idx] = static_cast<T>(a * c - b * s);
  y[2 * idx + 1] = static_cast<T>(a * s + b * c);
}

void check_cuda_tensor(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.is_cuda(), what, " must be a CUDA tensor");
}

struct ModNormFn : public torch::autograd::Function<ModNormFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& shift_in, const at::Tensor& scale_in) {
    auto x = x_in.contiguous(), shift = shift_in.expand_as(x_in).contiguous(),
         scale = scale_in.expand_as(x_in).contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    auto y = at::empty_like(x);
    auto stats = at::empty({2, rows}, x.options().dtype(at::kFloat));
    const c10::cuda::CUDAGuard guard(x.device());
    if (rows > 0) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "modnorm_forward", [&] {
        modnorm_forward<scalar_t><<<rows, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            x.data_ptr<scalar_t>(), shift.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
            stats[0].data_ptr<float>(), stats[1].data_ptr<float>(), d, 1e-6f);
      });
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    ctx->save_for_backward({x, scale, stats});
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], scale = saved[1], stats = saved[2];
    auto dy = grads[0].contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    auto dx = at::empty_like(x), dscale = at::empty_like(x);
    const c10::cuda::CUDAGuard guard(x.device());
    if (rows > 0) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "modnorm_backward", [&] {
        modnorm_backward<scalar_t><<<rows, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(), stats[0].data_ptr<float>(),
            stats[1].data_ptr<float>(), dx.data_ptr<scalar_t>(), dscale.data_ptr<scalar_t>(), d);
      });
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    return {dx, dy, dscale};  // shift and scale were expanded to x's shape: autograd reduces
  }
};

at::Tensor launch_rope(const at::Tensor& x_in, const at::Tensor& cos_in, const at::Tensor& sin_in, float sign) {
  auto x = x_in.contiguous();
  auto cos = cos_in.to(x.device(), at::kFloat).contiguous(), sin = sin_in.to(x.device(), at::kFloat).contiguous();
  const int64_t seq = x.size(2), pairs = x.size(3) / 2, rows = x.numel() / x.size(3);
  TORCH_CHECK(cos.size(0) == seq && cos.size(1) == pairs, "rope tables must be [L, hd/2]");
  auto y = at::empty_like(x);
  const int64_t n = rows * pairs;
  const c10::cuda::CUDAGuard guard(x.device());
  if (n > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rope", [&] {
      rope_kernel<scalar_t><<<(n + kThreads - 1) / kThreads, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          x.data_ptr<scalar_t>(), cos.data_ptr<float>(), sin.data_ptr<float>(), y.data_ptr<scalar_t>(), rows, seq,
          pairs, sign);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return y;
}

// The rotation is orthogonal: its backward is the rotation by the opposite angle.
struct RopeFn : public torch::autograd::Function<RopeFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return launch_rope(x, cos, sin, 1.f);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    return {launch_rope(grads[0], saved[0], saved[1], -1.f), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  check_cuda_tensor(x, "modulated_norm input");
  return ModNormFn::apply(x, shift, scale);
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  check_cuda_tensor(x, "rope input");
  TORCH_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope input must be [B, H, L, even head_dim]");
  return RopeFn::apply(x, cos, sin);
}

}  // namespace reel::cuda
