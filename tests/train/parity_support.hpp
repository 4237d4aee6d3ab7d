// The reference every parity test compares against: the same configuration trained on
// one rank with no sharding at all — the plain model, LibTorch autograd into each
// parameter's .grad, clipping and AdamW over each whole parameter. It shares nothing
// with the Trainer but the configuration, the model and the data.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "train/config.hpp"
#include "model/world_model.hpp"

namespace reel::test {

struct ReferenceStep {
  double loss = 0, grad_norm = 0;
  std::map<std::string, at::Tensor> grads;  // each parameter's unclipped gradient
};

struct ReferenceRun {
  std::vector<ReferenceStep> steps;
  WorldModel model{nullptr};  // the parameters after the last step
};

ReferenceRun train_reference(const TrainConfig& config);

}  // namespace reel::test
