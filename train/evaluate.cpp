// Evaluation on the held-out clips: the flow loss, and the world-model metrics of rollouts.
#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>

#include "model/flow.hpp"
#include "model/rollout.hpp"
#include "train/trainer.hpp"

namespace reel {

namespace {

// This dp rank's share of the held-out clips (the file's last `total`), split as evenly
// as dp allows (each sp rank its tokens of them): the world's sums then cover every
// held-out clip once at every layout.
std::vector<int64_t> held_out_share(int64_t clips, int64_t total, int64_t dp, int64_t d) {
  const int64_t first = total * d / dp, count = total * (d + 1) / dp - first;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < count; ++i) ids.push_back(clips - total + first + i);
  return ids;
}

}  // namespace

double Trainer::evaluate() {
  at::NoGradGuard no_grad;
  const int64_t total = c_.data.eval_clips;
  if (total == 0) return std::nan("");
  const auto ids = held_out_share(data_.clips, total, mesh_.dp(), mesh_.dp_rank());
  const auto dev = mesh_.world().device();
  auto sum = at::zeros({1}, at::TensorOptions(at::kDouble).device(dev));
  if (!ids.empty()) {
    auto batch = VideoReader(c_.data.path).read(ids);
    auto x0 = patchify(frames_to_float(batch.frames), c_.model);
    const auto& index = sequence_->index();  // step -1: the same noise every time
    auto flow = to_device(select_tokens(make_flow_batch(x0, ids, -1, c_.run.seed, c_.model), index), dev);
    sum += flow_loss_sum(fsdp_->forward(flow.x_t, flow.t, batch.actions.to(dev), index), flow).to(at::kDouble);
  }
  mesh_.world().all_reduce(sum);
  return sum.item<double>() / double(target_elements(c_.model, total));
}

bool Trainer::measures_rollouts() const {
  return c_.run.rollout_steps > 0 && c_.data.eval_clips > 0 && c_.model.attention == "causal" && data_.action_dim == 2;
}

RolloutMetrics Trainer::evaluate_rollouts() {
  at::NoGradGuard no_grad;
  const auto& m = c_.model;
  const int64_t c = m.context_groups * m.patch_t;
  RolloutMetrics metrics(m.groups() - m.context_groups, m.frames - c);
  // Every dp rank has clips (eval_clips >= dp is checked at start): one batch each, so
  // every rank runs the same forwards and FSDP's gathers pair up.
  const auto ids = held_out_share(data_.clips, c_.data.eval_clips, mesh_.dp(), mesh_.dp_rank());
  const auto dev = mesh_.world().device();
  auto batch = VideoReader(c_.data.path).read(ids);
  auto video = frames_to_float(batch.frames);  // [B, T, C, H, W]
  const auto& index = sequence_->index();      // this rank's token positions [Lc]
  const auto index_dev = index.to(dev);
  auto mine = patchify(video, m).index_select(1, index).to(dev);  // [B, Lc, P]
  RolloutSpec spec;
  spec.from_group = m.context_groups, spec.groups = m.groups() - m.context_groups;
  spec.steps = c_.run.rollout_steps, spec.seed = c_.run.seed, spec.context_t = c_.run.rollout_context_t;
  auto roll = [&](const at::Tensor& actions) {
    const auto acts = actions.to(dev);
    auto velocity = [&](const at::Tensor& x, const at::Tensor& t) { return fsdp_->forward(x, t, acts, index_dev); };
    auto local = rollout_tokens(velocity, mine, index, ids, m, spec);
    // The whole clips on every rank of the sp group: each position is held by one rank.
    auto full = at::zeros({int64_t(ids.size()), m.tokens(), m.patch_dim()}, local.options());
    full.index_copy_(1, index_dev, local);
    if (mesh_.sp() > 1) mesh_.sp_group().all_reduce(full);
    return unpatchify(full.cpu().to(at::kFloat), m).clamp(-1, 1);
  };
  auto predicted = roll(batch.actions);
  auto reversed = roll(reversed_actions(batch.actions, c - 1));
  if (mesh_.sp_rank() == 0) metrics.add(video, predicted, reversed, batch.actions, c);  // once per dp rank
  auto sums = metrics.pack().to(dev);
  mesh_.world().all_reduce(sums);
  metrics.unpack(sums);
  return metrics;
}

}  // namespace reel
