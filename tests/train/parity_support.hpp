// The reference every parity test compares against: the same configuration trained on
// one rank with no sharding at all — the plain model, LibTorch autograd into each
// parameter's .grad, clipping and AdamW over each whole parameter, the loss written out
// here for each family (not the family's ModelSpec::loss_sum). It shares nothing with
// the Trainer but the configuration, the model and the data. expect_parity() trains the
// Trainer beside it and compares every step.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <functional>

#include "reel/data/loader.hpp"
#include "reel/model/model.hpp"
#include "reel/parallel/shard_layout.hpp"
#include "reel/train/config.hpp"

namespace reel::test {

struct ReferenceStep {
  double loss = 0, grad_norm = 0;
  std::map<std::string, at::Tensor> grads;  // each parameter's unclipped gradient
};

struct ReferenceRun {
  std::vector<ReferenceStep> steps;
  std::shared_ptr<Model> model;  // the parameters after the last step
};

// What every parity test shares: a model of width 64 and 2 blocks (the family's preset
// otherwise), global batches of 12 x micro clips (they divide over 1-4 data-parallel
// ranks) in `micro` micro-batches, 4 held out, fixed seeds, clipping at 0.5 (it clips at
// every step: the norm is compared before clipping), warnings only. Not resolved.
TrainConfig parity_base(const std::string& data, const std::string& run_dir, int micro);

// HSDP with replica groups of size > 1 on `world` ranks (>= 2): shard groups of half the
// world, or of one rank at odd sizes.
inline int hsdp_shard_group(int world) { return world % 2 == 0 ? world / 2 : 1; }

// A family's loss written out: a micro-batch's loss summed over all its targets (the whole
// batch, every token) at `step` of a run seeded `seed`, and the targets of one sample
// (counted here, not asked of the family: a wrong count in the family fails parity).
struct ReferenceLoss {
  std::function<at::Tensor(Model& model, const ModelConfig& cfg, const Batch& batch, int64_t step, uint64_t seed)> sum;
  std::function<int64_t(const ModelConfig& cfg)> targets_per_sample;
};
// The world model's: flow matching's squared error over target tokens.
ReferenceLoss world_reference_loss();

ReferenceRun train_reference(const TrainConfig& config, const ReferenceLoss& loss);

// The 1-rank values (of each parameter, by name) of the slice of a unit that `rank`'s
// shard holds: [shard], padded as the layout pads.
at::Tensor reference_slice(const UnitLayout& layout, const std::map<std::string, at::Tensor>& grads, int rank);

// Trains the Trainer and the reference side by side: every step's loss, every unit's
// reduced gradient shard (before clipping), the gradient norm, and the parameters at the
// end agree within tol.
void expect_parity(TrainConfig config, const ReferenceLoss& loss, double tol = 1e-5);

}  // namespace reel::test
