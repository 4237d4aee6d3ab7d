#include "reel/model/rollout.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "reel/model/seed.hpp"
#include "reel/model/world_model.hpp"

namespace reel {
namespace {

// The whole clip's noise [B, L, P] for clips ids: group g of clip b from (seed, id, g).
at::Tensor clip_noise(const std::vector<int64_t>& ids, const ModelConfig& cfg, uint64_t seed, uint64_t salt) {
  const int64_t lg = cfg.tokens_per_group(), p = cfg.patch_dim();
  auto noise = at::empty({int64_t(ids.size()), cfg.tokens(), p}, at::kFloat);
  for (size_t b = 0; b < ids.size(); ++b) {
    for (int64_t g = 0; g < cfg.groups(); ++g) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, ids[b] * cfg.groups() + g, salt));
      noise[b].narrow(0, g * lg, lg).normal_(0.0, 1.0, gen);
    }
  }
  return noise;
}

}  // namespace

at::Tensor rollout_tokens(const VelocityFn& velocity, const at::Tensor& tokens, const at::Tensor& index,
                          const std::vector<int64_t>& ids, const ModelConfig& cfg, const RolloutSpec& spec) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(cfg.attention == AttentionKind::kCausal, "rollout needs frame-causal attention (model.attention causal)");
  TORCH_CHECK(spec.from_group >= 1 && spec.groups >= 1 && spec.from_group + spec.groups <= cfg.groups(),
              "rollout of groups [", spec.from_group, ", ", spec.from_group + spec.groups, ") of a clip of ",
              cfg.groups(), " groups, with at least one context group");
  TORCH_CHECK(spec.steps >= 1, "rollout needs at least one Euler step");
  TORCH_CHECK(int64_t(ids.size()) == tokens.size(0), "one clip id per clip");
  const auto opts = tokens.options();
  const auto idx = index.to(at::kLong).cpu();
  const auto group_of = at::div(idx, cfg.tokens_per_group(), "floor").to(tokens.device());  // [Lc] group of each token
  const auto noise = clip_noise(ids, cfg, spec.seed, 0x726f6c6c).index_select(1, idx).to(opts);  // [B, Lc, P]
  // The history as the model was trained to see it: clean, or noised to context_t.
  const auto history_eps =
      spec.context_t == 0 ? at::Tensor() : clip_noise(ids, cfg, spec.seed, 0x68697374).index_select(1, idx).to(opts);
  auto shown = [&](const at::Tensor& clean) {
    return spec.context_t == 0 ? clean : clean * (1 - spec.context_t) + spec.context_t * history_eps;
  };
  auto ctx = (group_of < spec.from_group).to(opts.dtype()).view({1, -1, 1});
  auto out = tokens * ctx + noise * (1 - ctx);       // context as given, generated groups as generated
  auto x = shown(tokens) * ctx + noise * (1 - ctx);  // the model's input
  const int64_t b = tokens.size(0), groups = cfg.groups();
  for (int64_t g = spec.from_group; g < spec.from_group + spec.groups; ++g) {
    auto mine = (group_of == g).to(opts.dtype()).view({1, -1, 1});
    auto t = at::ones({b, groups}, opts);  // later groups: still noise
    t.narrow(1, 0, g).fill_(spec.context_t);
    for (int64_t s = 0; s < spec.steps; ++s) {
      t.select(1, g).fill_(1.0 - double(s) / spec.steps);
      x = x - (1.0 / spec.steps) * velocity(x, t) * mine;
    }
    out = out * (1 - mine) + x * mine;
    x = x * (1 - mine) + shown(x) * mine;  // history for the next group
  }
  return out;
}

at::Tensor rollout(WorldModelImpl& model, const at::Tensor& tokens, const at::Tensor& actions,
                   const std::vector<int64_t>& ids, const RolloutSpec& spec) {
  const auto index = at::arange(tokens.size(1), at::kLong);
  auto velocity = [&](const at::Tensor& x, const at::Tensor& t) { return model.forward(x, t, actions, index); };
  return rollout_tokens(velocity, tokens, index, ids, model.config(), spec);
}

}  // namespace reel
