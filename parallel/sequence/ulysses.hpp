// Ulysses sequence parallelism: the all-to-all pair that turns "my tokens, every head"
// into "every token of the group, my heads" and back (communication only; attention
// itself runs unchanged in between).
//
//   scatter_heads  forward: x [B, H, Lc, hd] (this rank's Lc tokens, all H heads)
//                    -> [B, H/U, sum_i Lc_i, hd] (the group's tokens in rank order, heads
//                    [u H/U, (u+1) H/U) of this rank u);
//                  backward: the gradient takes the inverse all-to-all (gather_heads).
//   gather_heads   forward: the inverse; backward: scatter_heads of the gradient.
// Each is one autograd function whose backward is the other's forward, so the pair's
// gradients are exact. Token counts may differ per rank (uneven splits): counts[i] is
// rank i's Lc, the same on every rank of the group.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "reel/dist/communicator.hpp"

namespace reel {

struct UlyssesGroup {
  Communicator* comm = nullptr;   // the ulysses group, size U
  std::vector<int64_t> counts;    // [U] tokens held by each rank of it
  int64_t* bytes_sent = nullptr;  // optional: adds the bytes this rank sends to others
};

// Both collective over group.comm. Differentiable (see above).
at::Tensor scatter_heads(const at::Tensor& x, const UlyssesGroup& group);
at::Tensor gather_heads(const at::Tensor& y, const UlyssesGroup& group);

}  // namespace reel
