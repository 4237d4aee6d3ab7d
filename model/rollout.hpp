// Rolling a frame-causal world model out: the future frame-groups of a clip generated one
// by one, each by Euler steps of the flow ODE from noise (t = 1) to data (t = 0),
// conditioned on the history before it.
//
// The sequence keeps the whole clip's length throughout: the group being generated sits
// at its own positions, the groups after it hold their starting noise at t = 1, which
// frame-causal attention never lets an earlier group see. So a caller that holds only
// some of a clip's tokens (sequence parallelism: the positions `index`) rolls out with the
// same forward it trains with, and updates only its own tokens.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "reel/model/config.hpp"

namespace reel {

class WorldModelImpl;

// The model's velocity for this caller's tokens: x [B, Lc, P] (clip positions index),
// t [B, G] flow time of every frame-group -> [B, Lc, P]. Collective where the model is.
using VelocityFn = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& t)>;

struct RolloutSpec {
  int64_t from_group = 0;  // the first generated group (the groups before it are context)
  int64_t groups = 0;      // how many groups to generate, from_group on
  int64_t steps = 2;       // Euler steps per group (2: the best rollouts of the tiny demo, docs/model.md)
  uint64_t seed = 0;       // noise: from (seed, clip id, group), independent of any split
  // Context noise level: the history is shown to the model at this flow time (its tokens
  // noised to it), as in training with model.context_noise; 0 shows it clean.
  double context_t = 0.0;
};

// tokens [B, Lc, P]: the clean tokens at clip positions index [Lc] of clips ids[b] (only
// those of groups < from_group are read). Returns the same positions with groups
// [from_group, from_group + groups) generated, the earlier ones unchanged and any later
// ones left as noise. Deterministic in (seed, ids): the same at every layout.
at::Tensor rollout_tokens(const VelocityFn& velocity, const at::Tensor& tokens, const at::Tensor& index,
                          const std::vector<int64_t>& ids, const ModelConfig& cfg, const RolloutSpec& spec);

// The whole clip on one process: tokens [B, L, P], actions [B, T, A].
at::Tensor rollout(WorldModelImpl& model, const at::Tensor& tokens, const at::Tensor& actions,
                   const std::vector<int64_t>& ids, const RolloutSpec& spec);

}  // namespace reel
