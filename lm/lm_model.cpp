#include "reel/lm/lm_model.hpp"

#include <cmath>
#include <stdexcept>

#include "reel/dist/require.hpp"
#include "reel/model/ops.hpp"

namespace reel {
namespace {

// A parameter that is not a Linear's: [shape] on init.device, deferred or materialised.
at::Tensor gain(torch::nn::Module& m, const std::string& name, int64_t dim, const ParamInit& init) {
  return m.register_parameter(name, new_parameter({dim}, init));
}

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& gain) {
  const auto wide = x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);
  auto y = wide * at::rsqrt(wide.pow(2).mean(-1, /*keepdim=*/true) + 1e-6);
  return (y * gain.to(y.scalar_type())).to(x.scalar_type());
}

void validate_lm_config(const ModelConfig& cfg) {
  cfg.validate();
  const Require need{"model config (lm): "};
  need(cfg.family == "lm", "family must be lm, got '" + cfg.family + "'");
  need(cfg.vocab >= 2, "vocab must be >= 2, got " + std::to_string(cfg.vocab));
  need(cfg.seq_len >= 1, "seq_len must be >= 1, got " + std::to_string(cfg.seq_len));
  need(cfg.head_dim() % 2 == 0, "head_dim (dim / heads) must be even for rotary positions");
  need(cfg.attention == AttentionKind::kCausal,
       std::string("a language model's attention is causal (model.attention causal), got '") +
           enum_name(cfg.attention) + "'");
}

ModelConfig lm_preset(const std::string& name) {
  ModelConfig c;
  c.family = "lm";
  c.preset = name;
  c.vocab = 28;          // lm/corpus.hpp's alphabet
  if (name == "tiny") {  // trains in CI on 2 cores: 128 characters, 4 blocks of 128
    c.seq_len = 128, c.dim = 128, c.depth = 4, c.heads = 4;
    return c;
  }
  if (name == "small") {
    c.seq_len = 1024, c.dim = 384, c.depth = 8, c.heads = 6;
    return c;
  }
  throw std::invalid_argument("model.preset '" + name + "' is not a preset of model.family lm (tiny or small)");
}

LmBlockImpl::LmBlockImpl(const ModelConfig& cfg, const ParamInit& init) : cfg_(cfg) {
  const int64_t d = cfg.dim, hidden = cfg.mlp_hidden();
  norm1_ = gain(*this, "norm1", d, init);
  qkv_ = register_module("qkv", Linear(d, 3 * d, init));
  proj_ = register_module("proj", Linear(d, d, init));
  norm2_ = gain(*this, "norm2", d, init);
  fc1_ = register_module("fc1", Linear(d, cfg.mlp_fc1(), init));
  fc2_ = register_module("fc2", Linear(hidden, d, init));
}

at::Tensor LmBlockImpl::forward(const at::Tensor& x, const TokenContext& ctx) {
  const int64_t b = x.size(0), lc = x.size(1), d = cfg_.dim, h = cfg_.heads, hd = cfg_.head_dim();
  // Attention: pre-norm, rotary q and k, causal over positions (each token its own group).
  auto qkv = qkv_->forward(rms_norm(x, norm1_)).view({b, lc, 3, h, hd}).permute({2, 0, 3, 1, 4});
  AttentionInputs in{rope(qkv[0], ctx.rope_cos, ctx.rope_sin),
                     rope(qkv[1], ctx.rope_cos, ctx.rope_sin),
                     qkv[2],
                     ctx.host_groups,
                     ctx.host_groups,
                     /*causal=*/true};
  auto att = attention_fn(in).out.permute({0, 2, 1, 3}).reshape({b, lc, d});  // [B, Lc, D]
  auto y = x + proj_->forward(att);
  const bool swiglu = cfg_.mlp == MlpKind::kSwiglu;
  auto hidden = fc1_->forward(rms_norm(y, norm2_), /*gelu=*/!swiglu);
  if (swiglu) {
    auto parts = hidden.chunk(2, -1);
    hidden = at::silu(parts[0]) * parts[1];
  }
  return y + fc2_->forward(hidden);
}

LanguageModelImpl::LanguageModelImpl(const ModelConfig& cfg, const ParamInit& init) : cfg_(cfg) {
  validate_lm_config(cfg);
  embed_ = register_parameter("embed", new_parameter({cfg.vocab, cfg.dim}, init));
  for (int64_t i = 0; i < cfg.depth; ++i) blocks_.push_back(register_block(LmBlock(cfg, init)));
  final_norm_ = gain(*this, "final_norm", cfg.dim, init);
  head_ = register_module("head", Linear(cfg.dim, cfg.vocab, init));
  if (!init.deferred) init_model(*this, init.seed);
}

void LanguageModelImpl::set_attention(const AttentionFn& fn) {
  for (auto& block : blocks_) block->attention_fn = fn;
}

// 1-D rotary positions: pair j of a head turns by position x theta^(-j / (head_dim / 2)).
TokenContext LanguageModelImpl::context(const at::Tensor& index, const at::Device& device) const {
  const auto pos = index.to(at::kCPU, at::kLong);
  const int64_t pairs = cfg_.head_dim() / 2;
  const auto freq = at::pow(cfg_.rope_theta, -at::arange(pairs, at::kDouble) / double(pairs));
  const auto angle = pos.to(at::kDouble).unsqueeze(1) * freq.unsqueeze(0);  // [Lc, pairs]
  return {pos.to(device), pos.to(device), at::cos(angle).to(at::kFloat).to(device),
          at::sin(angle).to(at::kFloat).to(device), pos};
}

at::Tensor LanguageModelImpl::forward_block(size_t i, const at::Tensor& x, const at::Tensor& /*cond*/,
                                            const TokenContext& ctx) {
  return blocks_.at(i)->forward(x, ctx);
}

at::Tensor LanguageModelImpl::forward(const at::Tensor& tokens, const at::Tensor& index) {
  TORCH_CHECK(tokens.dim() == 2 && index.dim() == 1 && index.size(0) == tokens.size(1),
              "tokens [B, Lc] and one position per token: index [", index.numel(), "] for tokens ", tokens.sizes());
  TORCH_CHECK(is_materialized(embed_), "the language model ran with parameters that have no memory");
  const auto ctx = context(index, tokens.device());
  auto x = embed_.index_select(0, tokens.reshape({-1}).to(embed_.device(), at::kLong))
               .view({tokens.size(0), tokens.size(1), cfg_.dim});  // [B, Lc, D]
  for (size_t i = 0; i < blocks_.size(); ++i) x = run_block(i, x, at::Tensor(), ctx);
  return head_->forward(rms_norm(x, final_norm_));  // [B, Lc, vocab]
}

void LanguageModelImpl::init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) const {
  at::NoGradGuard no_grad;
  if (name.find("norm") != std::string::npos) {
    param.fill_(1.0);
    return;
  }
  if (name.find("bias") != std::string::npos) {
    param.zero_();
    return;
  }
  init_normal(name, param, seed);
}

}  // namespace reel
