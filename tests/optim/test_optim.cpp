// The optimizer against LibTorch's AdamW (the reference), the no-decay mask, clipping by
// the global norm over shards held by different ranks, the schedule, bad settings.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "reel/optim/adamw.hpp"
#include "reel/optim/clip.hpp"
#include "reel/optim/schedule.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

TEST(Optim, FlatAdamWMatchesTorchAdamWWithANoDecayMask) {
  torch::manual_seed(3);
  const int64_t n = 1000, split = 600;  // elements [0, 600) decay, [600, 1000) do not
  auto init = torch::randn({n});
  auto decayed = init.narrow(0, 0, split).clone().set_requires_grad(true);
  auto plain = init.narrow(0, split, n - split).clone().set_requires_grad(true);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<at::Tensor>{decayed},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1)));
  groups.emplace_back(std::vector<at::Tensor>{plain},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW reference(groups, torch::optim::AdamWOptions(1e-2));

  auto flat = init.clone();
  auto mask = torch::cat({torch::ones({split}), torch::zeros({n - split})});
  FlatAdamW mine({0.9, 0.95, 1e-8, 0.1});
  mine.add(flat, mask);
  for (int step = 0; step < 25; ++step) {
    auto grad = torch::randn({n}) * (step + 1);
    decayed.mutable_grad() = grad.narrow(0, 0, split).clone();
    plain.mutable_grad() = grad.narrow(0, split, n - split).clone();
    reference.step();
    mine.step({grad}, 1e-2);
  }
  auto expected = torch::cat({decayed.detach(), plain.detach()});
  EXPECT_TRUE(torch::allclose(flat, expected, 1e-6, 1e-6)) << (flat - expected).abs().max().item<float>();
  EXPECT_EQ(mine.steps(), 25);
}

TEST(Optim, ClippingUsesTheGlobalNormOfAllShards) {
  auto& w = world();
  // The full gradient [0, 1, ..., 4n) split over the ranks in contiguous shards.
  const int64_t per = 5;
  auto full = torch::arange(per * w.size(), torch::kFloat) / 10.0;
  auto mine = full.narrow(0, w.rank() * per, per).clone();
  auto extra = torch::full({2}, 0.5f * (w.rank() + 1));  // a second shard per rank
  double want_sq = full.pow(2).sum().item<double>();
  for (int r = 0; r < w.size(); ++r) want_sq += 2 * std::pow(0.5 * (r + 1), 2);
  // The norm is >= 0.89 at every world size: a bound of 0.5 always clips.
  const double norm = clip_grad_norm({mine, extra}, 0.5, &w);
  EXPECT_NEAR(norm, std::sqrt(want_sq), 1e-5);
  const double scale = 0.5 / (std::sqrt(want_sq) + 1e-6);
  EXPECT_TRUE(torch::allclose(mine, full.narrow(0, w.rank() * per, per) * scale, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(extra, torch::full({2}, 0.5f * (w.rank() + 1)) * scale, 1e-6, 1e-6));
  // Below the bound nothing changes; max_norm <= 0 only measures.
  auto small = torch::full({3}, 1e-3f);
  clip_grad_norm({small}, 10.0, &w);
  EXPECT_TRUE(small.eq(1e-3f).all().item<bool>());
}

TEST(Optim, ScheduleWarmsUpThenDecays) {
  LrSchedule s;
  s.lr = 1.0;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.min_ratio = 0.1;
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1.0);
  EXPECT_NEAR(s.lr_at(60), 0.55, 1e-12);  // halfway down the cosine
  EXPECT_NEAR(s.lr_at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.lr_at(500), 0.1, 1e-12);
  s.decay = LrDecay::kConstant;
  EXPECT_DOUBLE_EQ(s.lr_at(60), 1.0);
}

TEST(Optim, BadSettingsAreRejected) {
  LrSchedule s;
  s.lr = -1e-3;
  EXPECT_THROW(s.validate(), std::invalid_argument);
  EXPECT_THROW(parse_enum<LrDecay>("optim.decay", "linear"), std::invalid_argument);
  EXPECT_THROW(FlatAdamW({1.5, 0.95, 1e-8, 0.1}), std::invalid_argument);
  EXPECT_THROW(FlatAdamW({0.9, 0.95, 1e-8, -0.1}), std::invalid_argument);
  FlatAdamW opt({});
  EXPECT_THROW(opt.add(torch::zeros({4}, torch::kDouble), torch::ones({4})), std::invalid_argument);
  opt.add(torch::zeros({4}), torch::ones({4}));
  EXPECT_THROW(opt.step({}, 1e-3), std::invalid_argument);
}

}  // namespace
}  // namespace reel::test
