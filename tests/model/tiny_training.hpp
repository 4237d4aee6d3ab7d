// A single-process training loop for the model tests: the flow-matching objective on
// clips from the loader, LibTorch's AdamW. (The sharded trainer lives in launch/ and
// parallel/; this one exists to check that the model itself learns.)
#pragma once

#include <torch/torch.h>

#include "reel/data/loader.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/world_model.hpp"

namespace reel::test {

struct TinyRun {
  double first_loss = 0, last_loss = 0;  // mean of the first / last 20 steps
  int64_t steps = 0;
  double seconds = 0;
};

inline TinyRun train_tiny(WorldModel& model, SampleLoader& loader, int64_t steps, double lr, uint64_t seed) {
  const auto& cfg = model->config();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(lr).weight_decay(0.0).betas({0.9, 0.99}));
  TinyRun run;
  std::vector<double> losses;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    // Linear warm-up over 50 steps, then constant.
    for (auto& group : opt.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr * std::min(1.0, (step + 1) / 50.0));
    }
    auto batch = loader.next();
    auto x0 = patchify(frames_to_float(batch.at("frames")), cfg);
    auto flow = make_flow_batch(x0, batch.sample_ids, step, seed, cfg);
    auto pred = model->forward(flow.x_t, flow.t, batch.at("actions"));
    auto loss = flow_loss_sum(pred, flow) / double(target_elements(cfg, x0.size(0)));
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
    losses.push_back(loss.item<double>());
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.steps = steps;
  const int64_t w = std::min<int64_t>(20, steps);
  for (int64_t i = 0; i < w; ++i) {
    run.first_loss += losses[i] / w;
    run.last_loss += losses[steps - 1 - i] / w;
  }
  return run;
}

}  // namespace reel::test
