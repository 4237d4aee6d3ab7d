#include "reel/optim/clip.hpp"

#include <ATen/core/grad_mode.h>

#include <cmath>

namespace reel {

double clip_grad_norm(const std::vector<at::Tensor>& grad_shards, double max_norm, Communicator* comm) {
  at::NoGradGuard no_grad;
  if (grad_shards.empty()) return 0.0;
  // Sum of squares in float64: the order of a few partial sums barely matters then.
  auto sq = at::zeros({1}, grad_shards[0].options().dtype(at::kDouble));
  for (const auto& g : grad_shards) sq += g.to(at::kDouble).pow(2).sum();
  // One reduction per step for the whole model: every rank must know the global norm.
  if (comm) comm->all_reduce(sq, ReduceOp::kSum);
  const double norm = std::sqrt(sq.item<double>());
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& g : grad_shards) g.mul_(scale);
  }
  return norm;
}

}  // namespace reel
