// The world-model metrics against the physics world itself: the agent is found where the
// simulator put it, the action response is what the simulator does under other actions,
// and the metrics of known predictions (the truth, copying, ignoring actions) are exact.
#include <gtest/gtest.h>

#include "reel/data/physics_world.hpp"
#include "reel/data/world_metrics.hpp"
#include "reel/model/flow.hpp"

namespace reel {
namespace {

// 64 x 64, one ball (the agent), no gravity, slow: no wall within reach of the test's pushes.
PhysicsWorldSpec open_world() {
  PhysicsWorldSpec s;
  s.frames = 8, s.height = s.width = 64, s.balls = 1, s.gravity = 0, s.max_speed = 0.05;
  return s;
}

at::Tensor video_of(const PhysicsClip& clip) { return frames_to_float(clip.frames.unsqueeze(0)); }  // [1, T, C, H, W]

// A clip whose agent starts in the middle half (the pushes below move it < 10 px).
int64_t central_clip(const PhysicsWorldSpec& s) {
  for (int64_t i = 0;; ++i) {
    auto p = agent_positions(video_of(simulate_clip(s, i))[0].narrow(0, 0, 1));
    const double x = p[0][0].item<double>(), y = p[0][1].item<double>();
    if (x > 20 && x < 44 && y > 20 && y < 44) return i;
  }
}

TEST(WorldMetrics, AgentIsFoundAndActionResponseMatchesTheSimulator) {
  const auto s = open_world();
  const int64_t i = central_clip(s);
  auto actions = at::full({s.frames, 2}, 0.4, at::kFloat);
  actions.select(1, 1).fill_(-0.2);
  const auto reversed = reversed_actions(actions.unsqueeze(0), 3)[0];
  auto a = video_of(simulate_clip(s, i, actions))[0], b = video_of(simulate_clip(s, i, reversed))[0];
  auto measured = agent_positions(b) - agent_positions(a);  // [T, 2]
  auto predicted = agent_action_response((reversed - actions).unsqueeze(0), s.height, s.width, s.push)[0];
  EXPECT_GT(predicted.abs().max().item<double>(), 3.0) << "the pushes must move the agent measurably";
  EXPECT_LT((measured - predicted).abs().max().item<double>(), 0.15) << measured << predicted;  // seen: 0.10
  EXPECT_EQ(predicted.narrow(0, 0, 4).abs().max().item<double>(), 0.0);  // frames before the change
}

TEST(WorldMetrics, KnownPredictionsGiveExactFigures) {
  PhysicsWorldSpec s;  // the tiny preset's world: 8 frames of 16 x 16, 3 balls
  std::vector<at::Tensor> videos, actions, reversed;
  for (int64_t i = 0; i < 6; ++i) {
    auto clip = simulate_clip(s, i);
    auto rev = reversed_actions(clip.actions.unsqueeze(0), 3)[0];
    videos.push_back(video_of(clip)[0]);
    actions.push_back(clip.actions);
    reversed.push_back(video_of(simulate_clip(s, i, rev))[0]);
  }
  auto truth = at::stack(videos), acts = at::stack(actions), truth_rev = at::stack(reversed);
  const int64_t c = 4;
  // The truth itself: no error, and it follows the actions as the physics does.
  RolloutMetrics exact(2, 4);
  exact.add(truth, truth, truth_rev, acts, c);
  EXPECT_EQ(exact.mse(), 0.0);
  EXPECT_EQ(exact.agent_error(), 0.0);
  EXPECT_GT(exact.mse_copy(), 0.01);
  EXPECT_GT(exact.agent_error_copy(), 0.3);
  EXPECT_NEAR(exact.action_gain(), 1.0, 0.35);  // walls and collisions bend the free response
  // Copying the last context frame: the model's figures are the baseline's.
  auto copy = truth.clone();
  copy.narrow(1, c, 4).copy_(truth.select(1, c - 1).unsqueeze(1).expand({-1, 4, -1, -1, -1}));
  RolloutMetrics copying(2, 4);
  copying.add(truth, copy, copy, acts, c);
  EXPECT_NEAR(copying.mse(), copying.mse_copy(), 1e-12);
  EXPECT_NEAR(copying.agent_error(), copying.agent_error_copy(), 1e-12);
  EXPECT_EQ(copying.action_gain(), 0.0);  // the same picture under both actions
  // Sums add: two halves packed and added are the whole.
  RolloutMetrics first(2, 4), second(2, 4), whole(2, 4);
  first.add(truth.narrow(0, 0, 2), copy.narrow(0, 0, 2), truth_rev.narrow(0, 0, 2), acts.narrow(0, 0, 2), c);
  second.add(truth.narrow(0, 2, 4), copy.narrow(0, 2, 4), truth_rev.narrow(0, 2, 4), acts.narrow(0, 2, 4), c);
  whole.add(truth, copy, truth_rev, acts, c);
  RolloutMetrics sum(2, 4);
  sum.unpack(first.pack() + second.pack());
  EXPECT_TRUE(sum.pack().allclose(whole.pack(), 1e-12, 1e-12));
  EXPECT_EQ(sum.clips(), 6.0);
}

}  // namespace
}  // namespace reel
