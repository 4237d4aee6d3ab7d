#include "reel/model/ops.hpp"

namespace reel {

namespace reference {

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu) {
  auto y = at::linear(x, weight, bias);
  return gelu ? at::gelu(y, "tanh") : y;
}

at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
  return at::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6) * (1 + scale) + shift;
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto sizes = x.sizes().vec();
  auto pairs = x.reshape({sizes[0], sizes[1], sizes[2], sizes[3] / 2, 2});  // [B, H, L, n, 2]
  auto a = pairs.select(4, 0), b = pairs.select(4, 1);
  auto c = cos.to(x.device(), x.scalar_type()), s = sin.to(x.device(), x.scalar_type());  // [L, n]
  return at::stack({a * c - b * s, a * s + b * c}, 4).reshape(sizes);
}

}  // namespace reference

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool gelu) {
#ifdef REEL_HAVE_CUDA
  if (x.is_cuda() && cuda::linear_supported(x, weight, bias)) return cuda::linear(x, weight, bias, gelu);
#endif
  return reference::linear(x, weight, bias, gelu);
}

at::Tensor modulated_norm(const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
#ifdef REEL_HAVE_CUDA
  if (x.is_cuda()) return cuda::modulated_norm(x, shift, scale);
#endif
  return reference::modulated_norm(x, shift, scale);
}

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
#ifdef REEL_HAVE_CUDA
  if (x.is_cuda()) return cuda::rope(x, cos, sin);
#endif
  return reference::rope(x, cos, sin);
}

}  // namespace reel
