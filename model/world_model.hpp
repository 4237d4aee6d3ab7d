// The video world model: a diffusion transformer over tubelet tokens, conditioned per
// frame-group on the flow-matching time and that group's actions (adaLN-Zero), with
// 3-D RoPE attention (full or frame-causal). It knows nothing about parallelism: it is a
// Model (model/model.hpp), whose blocks and attention function are the handles parallel/
// uses. A token's causal group is its frame-group.
//
// Token order is (frame-group, row, col), group-major: the tokens of one frame-group are
// contiguous, so a contiguous split along the token axis is a split by groups and rows.
#pragma once

#include <torch/torch.h>

#include "reel/model/attention.hpp"
#include "reel/model/config.hpp"
#include "reel/model/layers.hpp"
#include "reel/model/model.hpp"

namespace reel {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelConfig& cfg, const ParamInit& init);
  // x [B, Lc, D]; mod [B, G, 6D] per-group modulation input (SiLU(cond) already applied
  // by the caller is NOT assumed: cond [B, G, D]). Returns [B, Lc, D].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx);

  AttentionFn attention_fn = attention;  // replaced by sequence parallelism

 private:
  ModelConfig cfg_;
  Linear qkv_{nullptr}, proj_{nullptr}, fc1_{nullptr}, fc2_{nullptr}, ada_{nullptr};
};
TORCH_MODULE(Block);

class WorldModelImpl : public Model {
 public:
  // Materialised and initialised from (init.seed, parameter name) by default; with
  // init.deferred, the structure only (no parameter memory: see model/layers.hpp).
  explicit WorldModelImpl(const ModelConfig& cfg, const ParamInit& init = {});

  // tokens [B, Lc, P] (tokens [offset, offset + Lc) of each clip), t [B, G] flow time of
  // every frame-group (0 = clean), actions [B, T, A] -> predicted velocity [B, Lc, P].
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& t, const at::Tensor& actions, int64_t offset = 0);
  // The same for the tokens at positions index [Lc] int64 of each clip (sequence
  // parallelism: this rank's share of the clip, in the order its attention expects).
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& t, const at::Tensor& actions, const at::Tensor& index);

  // Pieces of forward, exposed for rollouts and tests:
  at::Tensor embed(const at::Tensor& tokens);                            // [B,Lc,P] -> [B,Lc,D]
  at::Tensor condition(const at::Tensor& t, const at::Tensor& actions);  // -> [B, G, D]
  at::Tensor head(const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx);

  const ModelConfig& config() const { return cfg_; }

  // Model: blocks take cond [B, G, D]; a token's causal group is its frame-group.
  at::Tensor forward_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) override;
  SequenceShape sequence_shape() const override;
  at::Tensor token_groups(const at::Tensor& index) const override;
  void set_attention(const AttentionFn& fn) override;
  TokenContext context(const at::Tensor& index, const at::Device& device) const override;
  void init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) const override;

 private:
  ModelConfig cfg_;
  Linear patch_embed_{nullptr}, time_fc1_{nullptr}, time_fc2_{nullptr}, action_embed_{nullptr}, final_ada_{nullptr},
      final_proj_{nullptr};
  std::vector<Block> blocks_;
};
TORCH_MODULE(WorldModel);

// Deterministic initialisation of one parameter from (seed, its name) alone: the same
// values whatever else exists, so a sharded run may initialise piece by piece.
// Every weight ~ N(0, 0.02); biases 0; adaLN modulations and the final projection 0
// (adaLN-Zero: each block starts as the identity).
void init_parameter(const std::string& name, at::Tensor& param, uint64_t seed);

// Sinusoidal embedding of t in [0, 1]: [N] -> [N, dim].
at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim);

}  // namespace reel
