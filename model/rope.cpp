#include "reel/model/rope.hpp"

#include "reel/model/ops.hpp"

#include <cmath>

namespace reel {

std::array<int64_t, 3> rope_bands(int64_t head_dim) {
  const int64_t pairs = head_dim / 2, hw = pairs / 3;
  return {pairs - 2 * hw, hw, hw};
}

RopeTables rope_tables(const at::Tensor& positions, int64_t head_dim, double theta) {
  const auto bands = rope_bands(head_dim);
  std::vector<at::Tensor> angles;
  for (int axis = 0; axis < 3; ++axis) {
    const int64_t n = bands[axis];
    auto i = at::arange(n, at::kDouble);
    auto freq = at::pow(theta, -i / static_cast<double>(n));            // [n]
    auto pos = positions.select(1, axis).to(at::kDouble).unsqueeze(1);  // [L, 1]
    angles.push_back(pos * freq.unsqueeze(0));                          // [L, n]
  }
  auto angle = at::cat(angles, 1);  // [L, head_dim / 2]
  return {at::cos(angle).to(at::kFloat), at::sin(angle).to(at::kFloat)};
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
  return rope(x, tables.cos, tables.sin);  // fused on CUDA (model/ops.hpp)
}

at::Tensor token_positions(const ModelConfig& cfg, const at::Tensor& index) {
  const int64_t hh = cfg.height / cfg.patch_h, ww = cfg.width / cfg.patch_w;
  const auto& idx = index;
  return at::stack({idx.div(hh * ww, "floor"), idx.div(ww, "floor").remainder(hh), idx.remainder(ww)}, 1);
}

at::Tensor token_groups(const ModelConfig& cfg, const at::Tensor& index) {
  return index.div(cfg.tokens_per_group(), "floor");
}

}  // namespace reel
