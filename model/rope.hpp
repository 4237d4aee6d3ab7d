// 3-D rotary position embedding: the head dimension's rotation pairs are split into
// three bands, one per axis (t, h, w), each with its own frequencies
// theta^(-i / band) for i in [0, band). Pair i of a band rotates by position * freq_i.
#pragma once

#include <ATen/ATen.h>

#include "reel/model/config.hpp"

namespace reel {

struct RopeTables {
  at::Tensor cos;  // [L, head_dim / 2] float32
  at::Tensor sin;  // [L, head_dim / 2] float32
};

// Pairs per band (t, h, w): h and w get a third each, t the rest.
std::array<int64_t, 3> rope_bands(int64_t head_dim);

// positions [L, 3] int64: (t, h, w) index of each token.
RopeTables rope_tables(const at::Tensor& positions, int64_t head_dim, double theta);

// x [B, H, L, head_dim] rotated pairwise (x[2i], x[2i+1]) by the tables' angles.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

// (t, h, w) positions [Lc, 3] of the tokens at clip positions index [Lc] int64, in
// (group, row, col) order.
at::Tensor token_positions(const ModelConfig& cfg, const at::Tensor& index);
// Frame-group of the tokens at clip positions index [Lc]: [Lc] int64.
at::Tensor token_groups(const ModelConfig& cfg, const at::Tensor& index);

}  // namespace reel
