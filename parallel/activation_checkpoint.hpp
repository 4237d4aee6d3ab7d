// Activation checkpointing per block: forward runs without keeping the block's
// activations (only its inputs); backward recomputes the block with gradients on and
// back-propagates through the recomputation. Under FSDP the recomputation finds the
// block's parameters gathered again (FSDP re-gathers before the block's backward).
// The model is deterministic (no dropout), so the recomputation equals the original.
#pragma once

#include "reel/dist/enum_names.hpp"
#include "reel/model/model.hpp"

namespace reel {

// Which blocks are checkpointed: none, every block, or every k-th.
enum class CheckpointMode { kNone, kFull, kEvery };
constexpr EnumNames<CheckpointMode, 3> enum_names(CheckpointMode) {
  return {{{CheckpointMode::kNone, "none"}, {CheckpointMode::kFull, "full"}, {CheckpointMode::kEvery, "every"}}};
}

struct ActivationCheckpointConfig {
  CheckpointMode mode = CheckpointMode::kNone;
  int every = 2;          // with mode every: blocks 0, k, 2k, ... are checkpointed
  void validate() const;  // throws std::invalid_argument
  bool applies(size_t block) const;
  // How many of `depth` blocks are recomputed in backward.
  int64_t recomputed_blocks(int64_t depth) const;
};

// Wraps `inner` (the runner in place before) so that the chosen blocks are checkpointed.
// With no inner runner, it calls model.forward_block.
Model::BlockRunner activation_checkpoint_runner(Model& model, const ActivationCheckpointConfig& config,
                                                Model::BlockRunner inner);

}  // namespace reel
