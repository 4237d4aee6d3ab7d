// What a world-model researcher looks at first, measured on rollouts of held-out clips of
// the physics world (data/physics_world.hpp):
//   - rollout quality over the whole horizon: MSE per predicted frame-group for the model
//     and for copying the last context frame, and their ratio;
//   - tracking: where the agent ball (the white one) is in each predicted frame, found as
//     the centroid of the frame's whiteness (min over channels: the other balls' colours
//     all have a dark channel), against where it truly is, in pixels;
//   - action following: the same context rolled out again under reversed actions (every
//     action from the last context frame on negated); how far the predicted agent moves
//     between the two rollouts along the shift the physics gives an unobstructed agent for
//     that change (gain 1: as far as the physics; 0: the actions are ignored).
// Accumulated as sums (so ranks add their shares with one all-reduce), read as means.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "reel/data/physics_world.hpp"

namespace reel {

// Agent positions [N, 2] (x, y in pixels, from the top left corner) in frames
// [N, C, H, W] valued in [-1, 1]. A frame without a white blob gives the frame's centre
// (a model that loses the agent is charged for it).
at::Tensor agent_positions(const at::Tensor& frames);

// The physics world's agent displacement [B, T, 2] (pixels) at each frame caused by
// changing its actions by delta [B, T, 2] (walls and collisions left out): the push
// accelerates it within the frame and the velocity gained carries on.
// push: the world's agent acceleration per unit action (PhysicsWorldSpec::push).
at::Tensor agent_action_response(const at::Tensor& delta, int64_t height, int64_t width,
                                 double push = PhysicsWorldSpec{}.push);

// Actions [B, T, A] with every action from frame `from` on negated.
at::Tensor reversed_actions(const at::Tensor& actions, int64_t from);

struct RolloutMetrics {
  RolloutMetrics() = default;
  // groups, frames: predicted frame-groups and frames per clip.
  RolloutMetrics(int64_t groups, int64_t frames);

  // One batch: truth, predicted, predicted_reversed [B, T, C, H, W] in [-1, 1] (predicted
  // frames from context_frames on; predicted_reversed rolled out under
  // reversed_actions(actions, context_frames - 1)), actions [B, T, A].
  void add(const at::Tensor& truth, const at::Tensor& predicted, const at::Tensor& predicted_reversed,
           const at::Tensor& actions, int64_t context_frames);

  // All sums as one float64 tensor, and back (ranks all-reduce it).
  at::Tensor pack() const;
  void unpack(const at::Tensor& packed);

  double clips() const { return clips_; }
  double mse() const;          // model, mean over clips, predicted frames and pixels
  double mse_copy() const;     // copy-last-frame
  double agent_error() const;  // model, pixels, mean over clips and predicted frames
  double agent_error_copy() const;
  double action_gain() const;   // <model shift, physics shift> / |physics shift|^2
  double action_shift() const;  // mean |model shift|, pixels
  double action_shift_physics() const;
  // "key": value pairs of a JSON object (metrics.jsonl, reel sample --json): the means
  // above, their ratios, and the per-group and per-frame lists.
  std::string json_fields() const;
  // Three lines for people.
  std::string summary() const;

 private:
  int64_t groups_ = 0, frames_ = 0;
  double clips_ = 0;
  std::vector<double> mse_model_, mse_copy_;                                         // [groups] sums over clips
  std::vector<double> agent_model_, agent_copy_;                                     // [frames] sums over clips, pixels
  double shift_dot_ = 0, shift_physics2_ = 0, shift_model_ = 0, shift_physics_ = 0;  // sums
};

}  // namespace reel
