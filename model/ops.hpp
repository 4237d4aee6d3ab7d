// The model's hot operations, each with a LibTorch reference (CPU, and any device) and a
// fused CUDA path (compiled when reel is built with CUDA, used for CUDA tensors):
//   linear            cuBLASLt matmul with the bias (and GELU) fused into the epilogue
//   modulated_norm    LayerNorm (no affine) then adaLN: LN(x) * (1 + scale) + shift
//   rope              3-D rotary embedding (tables from model/rope.hpp)
// Every fused path is an autograd function (forward and backward) checked against the
// reference in tests/gpu/test_cuda_model.cpp.
#pragma once

#include <ATen/ATen.h>

namespace reel {

// x [..., K], weight [N, K], bias [N] or undefined -> [..., N]; gelu: tanh-GELU after bias.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu);
// x, shift, scale [..., D] -> [..., D] (eps 1e-6).
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale);
// x [B, H, L, hd]; cos, sin [L, hd / 2] float32.
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

namespace reference {
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu);
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale);
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
}  // namespace reference

#ifdef REEL_HAVE_CUDA
namespace cuda {
// The fused CUDA paths (CUDA tensors; float32, float16 or bfloat16). linear needs
// float16/bfloat16 (cuBLASLt's fused epilogues), contiguous inputs, K and N multiples of 8.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu);
at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale);
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// Whether cuda::linear takes these arguments (otherwise the reference is used).
bool linear_supported(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
}  // namespace cuda
#endif

}  // namespace reel
