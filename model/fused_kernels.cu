// CUDA kernels for the adaLN-modulated LayerNorm and 3-D RoPE, forward and backward, as
// autograd functions. Statistics and arithmetic in fp32 for 16/32-bit storage, fp64 for fp64.
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>

#include "reel/model/ops.hpp"

namespace reel::cuda {
namespace {

constexpr int kThreads = 256;

// Sum of v over the block (kThreads threads); every thread gets the total.
template <typename A>
__device__ A block_sum(A v, A* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  A total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  return total;
}

// One block per row of D: y = (x - mean) * rstd * (1 + scale) + shift.
template <typename T, typename A = at::acc_type<T, true>>
__global__ void modnorm_forward(const T* x, const T* shift, const T* scale, T* y, A* mean_out, A* rstd_out, int64_t d,
                                A eps) {
  __shared__ A shared[kThreads / 32];
  const int64_t row = blockIdx.x;
  x += row * d, shift += row * d, scale += row * d, y += row * d;
  A sum = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) sum += static_cast<A>(x[i]);
  const A mean = block_sum(sum, shared) / d;
  A var = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const A c = static_cast<A>(x[i]) - mean;
    var += c * c;
  }
  const A rstd = A(1) / sqrt(block_sum(var, shared) / d + eps);
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const A h = (static_cast<A>(x[i]) - mean) * rstd;
    y[i] = static_cast<T>(h * (A(1) + static_cast<A>(scale[i])) + static_cast<A>(shift[i]));
  }
  if (threadIdx.x == 0) mean_out[row] = mean, rstd_out[row] = rstd;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * (1 + scale);
// dscale = dy * xhat; dshift = dy.
template <typename T, typename A = at::acc_type<T, true>>
__global__ void modnorm_backward(const T* dy, const T* x, const T* scale, const A* mean_in, const A* rstd_in, T* dx,
                                 T* dscale, int64_t d) {
  __shared__ A shared[kThreads / 32];
  const int64_t row = blockIdx.x;
  dy += row * d, x += row * d, scale += row * d, dx += row * d, dscale += row * d;
  const A mean = mean_in[row], rstd = rstd_in[row];
  A sg = 0, sgx = 0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const A xhat = (static_cast<A>(x[i]) - mean) * rstd;
    const A g = static_cast<A>(dy[i]) * (A(1) + static_cast<A>(scale[i]));
    sg += g;
    sgx += g * xhat;
  }
  const A mg = block_sum(sg, shared) / d, mgx = block_sum(sgx, shared) / d;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const A xhat = (static_cast<A>(x[i]) - mean) * rstd;
    const A g = static_cast<A>(dy[i]) * (A(1) + static_cast<A>(scale[i]));
    dx[i] = static_cast<T>(rstd * (g - mg - xhat * mgx));
    dscale[i] = static_cast<T>(static_cast<A>(dy[i]) * xhat);
  }
}

// Rotates each pair (x[2i], x[2i+1]) of x [rows = B*H*L, hd] by sign * angle[l, i].
template <typename T, typename A = at::acc_type<T, true>>
__global__ void rope_kernel(const T* x, const float* cos, const float* sin, T* y, int64_t rows, int64_t seq,
                            int64_t pairs, A sign) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= rows * pairs) return;
  const int64_t row = idx / pairs, i = idx % pairs, l = row % seq;
  const A c = cos[l * pairs + i], s = sign * static_cast<A>(sin[l * pairs + i]);
  const A a = static_cast<A>(x[2 * idx]), b = static_cast<A>(x[2 * idx + 1]);
  y[2 * idx] = static_cast<T>(a * c - b * s);
  y[2 * idx + 1] = static_cast<T>(a * s + b * c);
}

void check_cuda_tensor(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.is_cuda(), what, " must be a CUDA tensor");
}

struct ModNormFn : public torch::autograd::Function<ModNormFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& shift_in,
                            const at::Tensor& scale_in) {
    auto x = x_in.contiguous(), shift = shift_in.expand_as(x_in).contiguous(),
         scale = scale_in.expand_as(x_in).contiguous();
    const int64_t d = x.size(-1), rows = x.numel() / d;
    auto y = at::empty_like(x);
    auto stats = at::empty({2, rows}, x.options().dtype(x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat));
    const c10::cuda::CUDAGuard guard(x.device());
    if (rows > 0) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "modnorm_forward", [&] {
        modnorm_forward<scalar_t><<<rows, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            x.data_ptr<scalar_t>(), shift.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
            stats[0].data_ptr<at::acc_type<scalar_t, true>>(), stats[1].data_ptr<at::acc_type<scalar_t, true>>(), d,
            at::acc_type<scalar_t, true>(1e-6));
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
            dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), scale.data_ptr<scalar_t>(),
            stats[0].data_ptr<at::acc_type<scalar_t, true>>(), stats[1].data_ptr<at::acc_type<scalar_t, true>>(),
            dx.data_ptr<scalar_t>(), dscale.data_ptr<scalar_t>(), d);
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
          pairs, static_cast<at::acc_type<scalar_t, true>>(sign));
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
