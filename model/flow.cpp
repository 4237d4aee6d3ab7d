#include "reel/model/flow.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "reel/model/seed.hpp"
#include "reel/model/world_model.hpp"

namespace reel {

at::Tensor frames_to_float(const at::Tensor& frames) {
  return frames.permute({0, 1, 4, 2, 3}).to(at::kFloat).div(127.5).sub(1.0);
}

at::Tensor patchify(const at::Tensor& video, const ModelConfig& cfg) {
  const int64_t b = video.size(0), t = video.size(1), c = video.size(2), h = video.size(3), w = video.size(4);
  const int64_t pt = cfg.patch_t, ph = cfg.patch_h, pw = cfg.patch_w;
  auto x = video.reshape({b, t / pt, pt, c, h / ph, ph, w / pw, pw});
  // -> [B, G, H', W', pt, ph, pw, C]
  x = x.permute({0, 1, 4, 6, 2, 5, 7, 3});
  return x.reshape({b, (t / pt) * (h / ph) * (w / pw), pt * ph * pw * c});
}

at::Tensor unpatchify(const at::Tensor& tokens, const ModelConfig& cfg) {
  const int64_t b = tokens.size(0), hh = cfg.height / cfg.patch_h, ww = cfg.width / cfg.patch_w;
  const int64_t g = tokens.size(1) / (hh * ww);
  auto x = tokens.reshape({b, g, hh, ww, cfg.patch_t, cfg.patch_h, cfg.patch_w, cfg.channels});
  x = x.permute({0, 1, 4, 7, 2, 5, 3, 6});  // [B, G, pt, C, H', ph, W', pw]
  return x.reshape({b, g * cfg.patch_t, cfg.channels, cfg.height, cfg.width});
}

namespace {

// One clip's flow times [G] and target mask [G] (1: a predicted group). Draws, in this
// order: the targets' logit-normal times; then, where configured, the history length and
// the history's noise levels (so the default draws exactly what it always did).
std::pair<at::Tensor, at::Tensor> draw_times(const ModelConfig& cfg, at::Generator& gen) {
  const int64_t g = cfg.groups(), k = cfg.context_groups;
  auto z = at::empty({cfg.time_sampling == TimeSampling::kClip ? 1 : g - k}, at::kFloat);
  z.normal_(cfg.logit_normal_mean, cfg.logit_normal_std, gen);
  auto t = at::zeros({g}, at::kFloat);
  t.narrow(0, k, g - k).copy_(at::sigmoid(z).expand({g - k}));
  int64_t history = k;
  if (cfg.context_sampling == ContextSampling::kRandom) {
    history = k + at::randint(g - k, {1}, gen, at::kLong).item<int64_t>();  // [k, g - 1]
  }
  if (cfg.context_noise > 0) {
    t.narrow(0, 0, history).uniform_(0.0, cfg.context_noise, gen);
  } else {
    t.narrow(0, 0, history).zero_();
  }
  auto target = at::zeros({g}, at::kFloat);
  target.narrow(0, history, g - history).fill_(1.0);
  return {t, target};
}

}  // namespace

FlowBatch make_flow_batch(const at::Tensor& x0, const std::vector<int64_t>& sample_ids, int64_t step, uint64_t seed,
                          const ModelConfig& cfg) {
  const int64_t b = x0.size(0), l = x0.size(1), p = x0.size(2), lg = cfg.tokens_per_group();
  TORCH_CHECK(static_cast<int64_t>(sample_ids.size()) == b, "one sample id per clip");
  std::vector<at::Tensor> noise, times, targets;
  for (int64_t i = 0; i < b; ++i) {
    // One generator per (seed, step, sample): times first, then eps, in a fixed order.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, step, sample_ids[i], 0x666c6f77));
    auto [t, target] = draw_times(cfg, gen);
    times.push_back(t);
    targets.push_back(target);
    noise.push_back(at::empty({l, p}, at::kFloat).normal_(0.0, 1.0, gen));
  }
  auto t = at::stack(times).to(x0.device());                                                    // [B, G]
  auto eps = at::stack(noise).to(x0.device(), x0.scalar_type());                                // [B, L, P]
  auto t_tok = t.repeat_interleave(lg, 1).unsqueeze(-1).to(x0.scalar_type());                   // [B, L, 1]
  auto weight = at::stack(targets).repeat_interleave(lg, 1).to(x0.device(), x0.scalar_type());  // [B, L]
  FlowBatch batch;
  batch.x_t = (1 - t_tok) * x0 + t_tok * eps;  // clean history: t = 0, so x_t = x0
  batch.target = (eps - x0) * weight.unsqueeze(-1);
  batch.t = t;
  batch.weight = weight;
  return batch;
}

at::Tensor flow_loss_sum(const at::Tensor& pred, const FlowBatch& batch, int64_t offset) {
  const int64_t lc = pred.size(1);
  auto w = batch.weight.narrow(1, offset, lc).unsqueeze(-1);
  auto diff = (pred - batch.target.narrow(1, offset, lc)) * w;
  return diff.pow(2).sum();
}

FlowBatch to_device(const FlowBatch& b, const at::Device& device) {
  return {b.x_t.to(device), b.t.to(device), b.target.to(device), b.weight.to(device)};
}

FlowBatch select_tokens(const FlowBatch& batch, const at::Tensor& index) {
  const auto idx = index.to(batch.x_t.device(), at::kLong);
  return {batch.x_t.index_select(1, idx), batch.t, batch.target.index_select(1, idx),
          batch.weight.index_select(1, idx)};
}

int64_t target_elements(const ModelConfig& cfg, int64_t global_batch) {
  return global_batch * (cfg.groups() - cfg.context_groups) * cfg.tokens_per_group() * cfg.patch_dim();
}

double block_forward_flops(const ModelConfig& cfg, int64_t batch) {
  const double l = double(cfg.tokens()) * batch, d = cfg.dim, g = double(cfg.groups()) * batch;
  const double hidden = cfg.mlp_hidden(), fc1_out = cfg.mlp_fc1();
  double flops = 2 * l * d * (3 * d)                         // qkv
                 + 2 * l * d * d                             // proj
                 + 2 * l * d * fc1_out + 2 * l * hidden * d  // MLP
                 + 2 * g * d * (6 * d);                      // adaLN modulation (per group)
  // Attention: scores q.k and probs.v, dense L x L per clip and head.
  flops += 2 * 2 * double(batch) * cfg.tokens() * cfg.tokens() * d;
  return flops;
}

double forward_flops(const ModelConfig& cfg, int64_t batch) {
  const double l = double(cfg.tokens()) * batch, d = cfg.dim, g = double(cfg.groups()) * batch;
  double total = cfg.depth * block_forward_flops(cfg, batch);
  total += 2 * l * cfg.patch_dim() * d;                      // patch embedding
  total += 2 * g * (256 * d + d * d);                        // time MLP
  total += 2 * g * (cfg.patch_t * cfg.action_dim) * d;       // action embedding
  total += 2 * g * d * 2 * d + 2 * l * d * cfg.patch_dim();  // final adaLN + projection
  return total;
}

double training_step_flops(const ModelConfig& cfg, int64_t batch) { return 3.0 * forward_flops(cfg, batch); }

}  // namespace reel
