#include "reel/optim/adamw.hpp"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "reel/dist/require.hpp"
#include "reel/dist/trace.hpp"

namespace reel {

void AdamWConfig::validate() const {
  const Require need{"optimizer: "};
  need(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got " + std::to_string(beta1));
  need(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got " + std::to_string(beta2));
  need(std::isfinite(eps) && eps > 0, "eps must be > 0, got " + std::to_string(eps));
  need(std::isfinite(weight_decay) && weight_decay >= 0,
       "weight_decay must be >= 0, got " + std::to_string(weight_decay));
}

FlatAdamW::FlatAdamW(AdamWConfig config) : config_(config) { config_.validate(); }

void FlatAdamW::add(const at::Tensor& param, const at::Tensor& decay_mask) {
  if (param.scalar_type() != at::kFloat || param.dim() != 1 || !param.is_contiguous()) {
    throw std::invalid_argument("FlatAdamW: parameters are flat contiguous fp32 shards");
  }
  if (decay_mask.numel() != param.numel())
    throw std::invalid_argument("FlatAdamW: decay mask size differs from the shard's");
  params_.push_back(param);
  masks_.push_back(decay_mask.to(param.device(), at::kFloat));
  states_.push_back({at::zeros_like(param), at::zeros_like(param)});
}

void FlatAdamW::step(const std::vector<at::Tensor>& grads, double lr) {
  trace::ScopedSpan span("optim.adamw", "optim");
  span.arg("shards", static_cast<int64_t>(params_.size()));
  if (grads.size() != params_.size()) throw std::invalid_argument("FlatAdamW: one gradient per parameter shard");
  if (!(lr >= 0)) throw std::invalid_argument("FlatAdamW: learning rate must be >= 0");
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
#ifdef REEL_HAVE_CUDA
    if (params_[i].is_cuda()) {
      adamw_update_cuda(params_[i], grads[i], masks_[i], states_[i], config_, lr, steps_);
      continue;
    }
#endif
    adamw_update(params_[i], grads[i], masks_[i], states_[i], config_, lr, steps_);
  }
}

void adamw_update(at::Tensor& param, const at::Tensor& grad, const at::Tensor& mask, AdamWState& state,
                  const AdamWConfig& c, double lr, int64_t step) {
  at::NoGradGuard no_grad;
  const auto g = grad.to(at::kFloat);
  param.mul_(1 - lr * c.weight_decay * mask);
  state.exp_avg.mul_(c.beta1).add_(g, 1 - c.beta1);
  state.exp_avg_sq.mul_(c.beta2).addcmul_(g, g, 1 - c.beta2);
  const double bc1 = 1 - std::pow(c.beta1, double(step)), bc2 = 1 - std::pow(c.beta2, double(step));
  auto denom = (state.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(c.eps);
  param.addcdiv_(state.exp_avg, denom, -lr / bc1);
}

int64_t FlatAdamW::state_bytes() const {
  int64_t bytes = 0;
  auto add = [&](const at::Tensor& t) { bytes += t.defined() ? static_cast<int64_t>(t.nbytes()) : 0; };
  for (const auto& s : states_) {
    add(s.exp_avg);
    add(s.exp_avg_sq);
  }
  for (const auto& m : masks_) add(m);
  return bytes;
}

}  // namespace reel
