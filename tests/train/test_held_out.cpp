// The held-out trend (train/trainer.hpp: HeldOutTrend, held_out_report): which evaluation
// is the best, and what the end of a run says about it. The figures of the overfitting
// case are those of the 5,000-step demo (1,024 training clips, global batch 16).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "reel/train/trainer.hpp"

namespace reel {
namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

HeldOutTrend demo_trend(double train_at_best, double train_at_last) {
  HeldOutTrend t;
  t.note(4000, 0.0510, 0.0520);
  t.note(4500, 0.0495, train_at_best);
  t.note(5000, 0.0514, train_at_last);
  return t;
}

TEST(HeldOut, RisingWhileTrainingFallsIsOverfitting) {
  const auto t = demo_trend(0.0480, 0.0450);
  EXPECT_EQ(t.best_step, 4500);
  EXPECT_EQ(t.last_step, 5000);
  EXPECT_TRUE(t.overfits());
  const auto text = held_out_report(t, 1024, 16, true);
  EXPECT_TRUE(has(text, "held-out loss: best 0.0495 at step 4500; last 0.0514 at step 5000 (+3.8% since the best"))
      << text;
  EXPECT_TRUE(has(text, "rising while the training loss falls, 0.0480 -> 0.0450")) << text;
  EXPECT_TRUE(has(text, "overfitting its 1024 training clips, 78 epochs")) << text;  // 5000 x 16 / 1024 = 78.1
  EXPECT_TRUE(has(text, "model_best.h5 holds step 4500's weights")) << text;
}

TEST(HeldOut, WithoutKeepBestTheFinalWeightsAreSaidToBeTheLast) {
  const auto text = held_out_report(demo_trend(0.0480, 0.0450), 1024, 16, false);
  EXPECT_FALSE(has(text, "model_best.h5 holds")) << text;
  EXPECT_TRUE(has(text, "model.h5 holds step 5000's weights (run.keep_best true")) << text;
}

TEST(HeldOut, RisingWithTheTrainingLossIsNotOverfitting) {
  const auto t = demo_trend(0.0480, 0.0600);
  EXPECT_FALSE(t.overfits());
  const auto text = held_out_report(t, 1024, 16, true);
  EXPECT_TRUE(has(text, "the training loss did not fall either, 0.0480 -> 0.0600: not a sign of overfitting")) << text;
  EXPECT_FALSE(has(text, "overfitting its")) << text;
}

TEST(HeldOut, TheLastBeingTheBestIsNotAlarming) {
  HeldOutTrend t;
  t.note(500, 0.09, 0.10);
  t.note(1000, 0.07, 0.08);
  EXPECT_FALSE(t.overfits());
  const auto text = held_out_report(t, 1024, 16, true);
  EXPECT_EQ(text,
            "held-out loss: best 0.0700 at step 1000, the last evaluation; model_best.h5 holds step 1000's weights");
  EXPECT_EQ(held_out_report(HeldOutTrend{}, 1024, 16, true), "");  // no evaluation: nothing to say
}

TEST(HeldOut, TheBestIsTheLowestFiniteLoss) {
  HeldOutTrend t;
  EXPECT_FALSE(t.improves(10, std::nan("")));
  EXPECT_TRUE(t.improves(10, 5.0));  // the first evaluation
  t.note(10, 0.5, 1.0);
  EXPECT_FALSE(t.improves(20, 0.5));  // equal: the earlier one stays
  EXPECT_FALSE(t.improves(20, INFINITY));
  EXPECT_TRUE(t.improves(20, 0.4));
  // The step the best came from, evaluated again after a resume that re-runs it: the
  // weights kept are replaced by this continuation's, whatever its loss.
  EXPECT_TRUE(t.improves(10, 0.6));
  t.note(20, 0.7, 0.9);
  EXPECT_EQ(t.best_step, 10);
  EXPECT_EQ(t.last_step, 20);
  EXPECT_TRUE(t.overfits());
  EXPECT_TRUE(has(held_out_report(t, 8, 4, true), "overfitting its 8 training clips, 10 epochs"));  // 20 x 4 / 8
}

}  // namespace
}  // namespace reel
