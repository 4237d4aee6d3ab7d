// A causal language model: decoder-only transformer over token ids (pre-RMSNorm blocks,
// 1-D rotary positions, causal attention, GELU or SwiGLU MLP, untied output head). The
// second Model of reel (model/model.hpp), in its own folder, to show that FSDP, sequence
// parallelism, activation checkpointing and the Trainer take any transformer: it shares
// no layer with the world model beyond Linear and the attention function, has no
// conditioning (cond is undefined), and each token is its own causal group.
//
// Configured by a ModelConfig of family "lm" (model/config.hpp): dim, depth, heads, mlp,
// mlp_ratio, rope_theta, vocab, seq_len.
#pragma once

#include <torch/torch.h>

#include "reel/model/config.hpp"
#include "reel/model/layers.hpp"
#include "reel/model/model.hpp"

namespace reel {

class LmBlockImpl : public torch::nn::Module {
 public:
  LmBlockImpl(const ModelConfig& cfg, const ParamInit& init);
  // x [B, Lc, D] -> [B, Lc, D] (ctx: positions, rotary tables, host groups).
  at::Tensor forward(const at::Tensor& x, const TokenContext& ctx);

  AttentionFn attention_fn = attention;  // replaced by sequence parallelism

 private:
  ModelConfig cfg_;
  at::Tensor norm1_, norm2_;  // [D] RMSNorm gains
  Linear qkv_{nullptr}, proj_{nullptr}, fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(LmBlock);

class LanguageModelImpl : public Model {
 public:
  // Materialised and initialised from (init.seed, parameter name), or deferred.
  explicit LanguageModelImpl(const ModelConfig& cfg, const ParamInit& init = {});

  // tokens [B, Lc] int64 at positions index [Lc] int64 of each sequence (all of them, or
  // this rank's share under sequence parallelism) -> logits [B, Lc, vocab].
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& index);

  const ModelConfig& config() const { return cfg_; }

  at::Tensor forward_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) override;
  SequenceShape sequence_shape() const override { return {cfg_.seq_len, cfg_.dim, cfg_.heads, true}; }
  at::Tensor token_groups(const at::Tensor& index) const override { return index.to(at::kLong); }
  void set_attention(const AttentionFn& fn) override;
  TokenContext context(const at::Tensor& index, const at::Device& device) const override;
  // Weights ~ N(0, 0.02); biases 0; RMSNorm gains 1.
  void init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) const override;

 private:
  ModelConfig cfg_;
  at::Tensor embed_;       // [vocab, D] token embedding
  at::Tensor final_norm_;  // [D]
  Linear head_{nullptr};   // D -> vocab
  std::vector<LmBlock> blocks_;
};
TORCH_MODULE(LanguageModel);

// x [..., D] * rsqrt(mean(x^2) + 1e-6) * gain [D], computed in fp32 at least.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& gain);

// The language model's rules beyond ModelConfig::validate (throws std::invalid_argument).
void validate_lm_config(const ModelConfig& cfg);

// "tiny" | "small" (family lm); anything else throws std::invalid_argument listing them.
ModelConfig lm_preset(const std::string& name);

}  // namespace reel
