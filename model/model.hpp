// The model interface: what parallel/ (FSDP, sequence parallelism, activation
// checkpointing), the planner and the training loop need from a transformer, and nothing
// about how they use it. The world model (model/world_model.hpp) and the language model
// (lm/) are implementations; a project of its own adds another the same way
// (CONTRIBUTING.md, "Adding a model").
//
// A Model is a stack of blocks between a root:
//   blocks  registered with register_block() as "block0", "block1", ...; each maps
//           (x [B, Lc, D], cond, ctx) -> [B, Lc, D]. FSDP makes each one a unit (gathered
//           just before it runs, freed after); activation checkpointing recomputes it.
//   root    every other parameter (embeddings, conditioning, head): one more FSDP unit,
//           gathered for the whole forward.
// The model's forward runs every block through run_block(), which parallel/ wraps
// (set_block_runner): a model that calls its blocks directly is not sharded correctly.
//
// Tokens: a sample is a sequence of sequence_length() tokens. Each token belongs to a
// causal group (token_groups): under causal attention a token sees the tokens of its own
// and earlier groups (a frame-group of the world model; the token itself in a language
// model). Sequence parallelism gives each rank a share of the positions (any subset, in
// any order); the model runs its forward on those (TokenContext.index) with the attention
// function parallel/ installs (set_attention), and every other layer must be token-wise.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reel/model/attention.hpp"
#include "reel/model/sequence_shape.hpp"

namespace reel {

// Per-token context a block needs, for the sample's tokens at positions `index`.
struct TokenContext {
  at::Tensor index;               // [Lc] int64 position of each token in the sample
  at::Tensor groups;              // [Lc] int64 causal group of each token
  at::Tensor rope_cos, rope_sin;  // [Lc, head_dim / 2] rotary tables (undefined: no RoPE)
  // [Lc] int64 the same groups on the host: attention cuts its fused calls from their
  // values, which on a GPU would otherwise cost a device-to-host sync in every block.
  at::Tensor host_groups;
};

class Model : public torch::nn::Module {
 public:
  // How block i runs on (x [B, Lc, D], cond, ctx): cond is the model's per-sample
  // conditioning (the world model's [B, G, D]; undefined for a model without one) and
  // flows into the block's backward like x. Returns [B, Lc, D].
  using BlockRunner =
      std::function<at::Tensor(size_t index, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx)>;

  size_t num_blocks() const { return blocks_.size(); }
  torch::nn::Module& block(size_t i) { return *blocks_.at(i); }
  // Runs block i itself: what the default runner does, and what a runner calls inside.
  virtual at::Tensor forward_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) = 0;
  // Runs block i through the installed runner (forward_block when none): the model's
  // forward calls this for every block.
  at::Tensor run_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
    return runner_ ? runner_(i, x, cond, ctx) : forward_block(i, x, cond, ctx);
  }
  // A runner acts around forward_block (gather the block's parameters first, recompute it
  // in backward, ...); parallel/ installs them, each wrapping the one before.
  void set_block_runner(BlockRunner runner) { runner_ = std::move(runner); }
  const BlockRunner& block_runner() const { return runner_; }

  virtual SequenceShape sequence_shape() const = 0;
  // [n] int64 causal group of each position in index [n] int64 (host tensors).
  virtual at::Tensor token_groups(const at::Tensor& index) const = 0;
  // Replaces every block's attention (sequence parallelism installs its own).
  virtual void set_attention(const AttentionFn& fn) = 0;
  // The context of the positions index [Lc] int64, on `device`.
  virtual TokenContext context(const at::Tensor& index, const at::Device& device) const = 0;
  // Deterministic initialisation of one parameter from (seed, its name) alone, whatever
  // else exists, so that FSDP may initialise a deferred model shard by shard.
  virtual void init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) const = 0;

 protected:
  // Registers `block` as "block<i>" (i: the number of blocks so far) and returns it.
  template <typename Holder>
  Holder register_block(Holder block) {
    blocks_.push_back(register_module("block" + std::to_string(blocks_.size()), block));
    return block;
  }

 private:
  std::vector<std::shared_ptr<torch::nn::Module>> blocks_;
  BlockRunner runner_;
};

// Gives every deferred parameter memory and initialises every parameter through
// model.init_parameter (a materialised model, from seed).
void init_model(Model& model, uint64_t seed);

}  // namespace reel
