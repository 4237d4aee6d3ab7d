// Global gradient-norm clipping over sharded gradients: the sum of squares of every
// local shard, all-reduced (SUM) over the ranks that together hold the gradients, then
// every shard scaled by min(1, max_norm / (norm + 1e-6)).
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "reel/dist/communicator.hpp"

namespace reel {

// Returns the global norm before clipping. `comm` may be null (one rank holds all).
// max_norm <= 0: only measure. Shards on padding must hold zeros (they add nothing).
double clip_grad_norm(const std::vector<at::Tensor>& grad_shards, double max_norm, Communicator* comm);

}  // namespace reel
