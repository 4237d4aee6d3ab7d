// World-model flow matching (rectified flow) and the clip <-> token transforms.
//
// The first k frame-groups of a clip are context and stay clean (t = 0); the others are
// targets, noised along x_t = (1 - t) x + t eps with t ~ logit-normal (per clip or per
// frame-group); the model predicts the velocity eps - x; the loss is the squared error
// over target tokens only. All randomness is a function of (seed, step, global sample
// index): never of the rank or of how tokens are split.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "reel/model/config.hpp"

namespace reel {

class WorldModelImpl;

// frames uint8 [B, T, H, W, C] (the storage layout) -> float [B, T, C, H, W] in [-1, 1].
at::Tensor frames_to_float(const at::Tensor& frames);
// [B, T, C, H, W] -> tokens [B, L, P], L in (group, row, col) order, P = (pt, ph, pw, C).
at::Tensor patchify(const at::Tensor& video, const ModelConfig& cfg);
// tokens [B, L', P] of whole groups -> [B, T', C, H, W].
at::Tensor unpatchify(const at::Tensor& tokens, const ModelConfig& cfg);

struct FlowBatch {
  at::Tensor x_t;     // [B, L, P] model input: clean context, noised targets
  at::Tensor t;       // [B, G] flow time per frame-group (0 for context)
  at::Tensor target;  // [B, L, P] velocity eps - x (zero on context tokens)
  at::Tensor weight;  // [B, L] 1 on target tokens, 0 on history tokens
};

// x0 [B, L, P] clean tokens of the clips with global indices sample_ids[b].
FlowBatch make_flow_batch(const at::Tensor& x0, const std::vector<int64_t>& sample_ids, int64_t step, uint64_t seed,
                          const ModelConfig& cfg);

// Sum of squared errors over target tokens of pred [B, Lc, P] against a batch's tokens
// [offset, offset + Lc). Divide by target_elements() of the global batch for the mean.
at::Tensor flow_loss_sum(const at::Tensor& pred, const FlowBatch& batch, int64_t offset = 0);
// The batch restricted to the tokens at clip positions index [Lc] int64 (in that order):
// x_t, target [B, Lc, P], weight [B, Lc]; t stays per frame-group [B, G]. Sequence
// parallelism draws the whole clip's noise (it depends on the sample, not the split) and
// keeps only its tokens.
FlowBatch select_tokens(const FlowBatch& batch, const at::Tensor& index);
// The batch's tensors on `device`.
FlowBatch to_device(const FlowBatch& batch, const at::Device& device);
int64_t target_elements(const ModelConfig& cfg, int64_t global_batch);

// Rolling out: model/rollout.hpp.

// Exact floating-point operations of one training step (forward + backward) on
// `batch` clips: every matmul (2 flops per multiply-add) and both attention matmuls
// (the dense L x L score matrix, as computed), backward = 2 x forward.
double training_step_flops(const ModelConfig& cfg, int64_t batch);
double forward_flops(const ModelConfig& cfg, int64_t batch);
// One transformer block's forward on `batch` clips (what activation checkpointing
// recomputes per checkpointed block).
double block_forward_flops(const ModelConfig& cfg, int64_t batch);

}  // namespace reel
