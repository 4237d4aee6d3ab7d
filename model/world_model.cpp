#include "reel/model/world_model.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "reel/model/ops.hpp"
#include "reel/model/rope.hpp"
#include "reel/model/seed.hpp"

namespace reel {

namespace F = torch::nn::functional;

namespace {
constexpr int64_t kTimeFeatures = 256;

// Per-group modulation [B, G, n*D] gathered to tokens and split: n tensors [B, Lc, D].
std::vector<at::Tensor> per_token(const at::Tensor& mod, const at::Tensor& groups, int64_t n) {
  return mod.index_select(1, groups.to(mod.device())).chunk(n, -1);
}

}  // namespace

BlockImpl::BlockImpl(const ModelConfig& cfg, const ParamInit& init) : cfg_(cfg) {
  const int64_t d = cfg.dim, hidden = cfg.mlp_hidden();
  qkv_ = register_module("qkv", Linear(d, 3 * d, init));
  proj_ = register_module("proj", Linear(d, d, init));
  fc1_ = register_module("fc1", Linear(d, cfg.mlp_fc1(), init));
  fc2_ = register_module("fc2", Linear(hidden, d, init));
  ada_ = register_module("ada", Linear(d, 6 * d, init));
}

at::Tensor BlockImpl::forward(const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
  const int64_t b = x.size(0), lc = x.size(1), d = cfg_.dim, h = cfg_.heads, hd = cfg_.head_dim();
  auto mod = per_token(ada_->forward(at::silu(cond)), ctx.groups, 6);  // 6 x [B, Lc, D]
  // Attention: pre-norm, adaLN shift/scale, 3-D RoPE on q and k, gated residual.
  auto qkv = qkv_->forward(modulated_norm(x, mod[0], mod[1])).view({b, lc, 3, h, hd}).permute({2, 0, 3, 1, 4});
  RopeTables rope{ctx.rope_cos, ctx.rope_sin};
  AttentionInputs in{apply_rope(qkv[0], rope), apply_rope(qkv[1], rope), qkv[2],
                     ctx.host_groups,          ctx.host_groups,          cfg_.attention == AttentionKind::kCausal};
  auto att = attention_fn(in).out.permute({0, 2, 1, 3}).reshape({b, lc, d});  // [B, Lc, D]
  auto y = x + mod[2] * proj_->forward(att);
  // MLP: pre-norm, adaLN, GELU (fused into fc1's epilogue on CUDA) or SwiGLU, gated residual.
  const bool swiglu = cfg_.mlp == MlpKind::kSwiglu;
  auto hidden = fc1_->forward(modulated_norm(y, mod[3], mod[4]), /*gelu=*/!swiglu);
  if (swiglu) {
    auto parts = hidden.chunk(2, -1);
    hidden = at::silu(parts[0]) * parts[1];
  }
  return y + mod[5] * fc2_->forward(hidden);
}

WorldModelImpl::WorldModelImpl(const ModelConfig& cfg, const ParamInit& init) : cfg_(cfg) {
  cfg.validate();
  const int64_t d = cfg.dim;
  patch_embed_ = register_module("patch_embed", Linear(cfg.patch_dim(), d, init));
  time_fc1_ = register_module("time_fc1", Linear(kTimeFeatures, d, init));
  time_fc2_ = register_module("time_fc2", Linear(d, d, init));
  if (cfg.action_dim > 0) {
    action_embed_ = register_module("action_embed", Linear(cfg.patch_t * cfg.action_dim, d, init));
  }
  for (int64_t i = 0; i < cfg.depth; ++i) {
    blocks_.push_back(register_block(Block(cfg, init)));
  }
  final_ada_ = register_module("final_ada", Linear(d, 2 * d, init));
  final_proj_ = register_module("final_proj", Linear(d, cfg.patch_dim(), init));
  if (!init.deferred) init_model(*this, init.seed);
}

void WorldModelImpl::set_attention(const AttentionFn& fn) {
  for (auto& block : blocks_) block->attention_fn = fn;
}

SequenceShape WorldModelImpl::sequence_shape() const { return cfg_.sequence_shape(); }

at::Tensor WorldModelImpl::token_groups(const at::Tensor& index) const { return reel::token_groups(cfg_, index); }

void WorldModelImpl::init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) const {
  reel::init_parameter(name, param, seed);
}

TokenContext WorldModelImpl::context(const at::Tensor& index, const at::Device& device) const {
  const auto cpu_index = index.to(at::kCPU, at::kLong);
  auto rope = rope_tables(token_positions(cfg_, cpu_index), cfg_.head_dim(), cfg_.rope_theta);
  const auto groups = reel::token_groups(cfg_, cpu_index);
  return {cpu_index.to(device), groups.to(device), rope.cos.to(device), rope.sin.to(device), groups};
}

// Computation runs in the parameters' dtype (fp32, or bf16 when they are held so).
at::Tensor WorldModelImpl::embed(const at::Tensor& tokens) {
  return patch_embed_->forward(tokens.to(patch_embed_->weight.scalar_type()));
}

at::Tensor WorldModelImpl::condition(const at::Tensor& t, const at::Tensor& actions) {
  const int64_t b = t.size(0), g = t.size(1);
  auto feats = timestep_embedding(t.reshape({-1}), kTimeFeatures).to(patch_embed_->weight.dtype());
  auto cond = time_fc2_->forward(at::silu(time_fc1_->forward(feats))).view({b, g, cfg_.dim});
  if (action_embed_) {
    auto a = actions.to(cond.dtype()).reshape({b, g, cfg_.patch_t * cfg_.action_dim});
    cond = cond + action_embed_->forward(a);
  }
  return cond;  // [B, G, D]
}

at::Tensor WorldModelImpl::head(const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
  auto mod = per_token(final_ada_->forward(at::silu(cond)), ctx.groups, 2);
  return final_proj_->forward(modulated_norm(x, mod[0], mod[1]));
}

at::Tensor WorldModelImpl::forward(const at::Tensor& tokens, const at::Tensor& t, const at::Tensor& actions,
                                   int64_t offset) {
  return forward(tokens, t, actions, at::arange(offset, offset + tokens.size(1), at::kLong));
}

at::Tensor WorldModelImpl::forward(const at::Tensor& tokens, const at::Tensor& t, const at::Tensor& actions,
                                   const at::Tensor& index) {
  TORCH_CHECK(index.dim() == 1 && index.size(0) == tokens.size(1), "one token position per token: index [",
              index.numel(), "] for tokens ", tokens.sizes());
  const auto ctx = context(index, tokens.device());
  auto cond = condition(t, actions);
  auto x = embed(tokens);
  for (size_t i = 0; i < blocks_.size(); ++i) x = run_block(i, x, cond, ctx);
  return head(x, cond, ctx);
}

at::Tensor WorldModelImpl::forward_block(size_t index, const at::Tensor& x, const at::Tensor& cond,
                                         const TokenContext& ctx) {
  return blocks_.at(index)->forward(x, cond, ctx);
}

at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto freqs = at::exp(at::arange(half, t.options().dtype(at::kFloat)) * (-std::log(10000.0) / half));
  auto args = t.to(at::kFloat).unsqueeze(1) * 1000.0 * freqs.unsqueeze(0);  // [N, half]
  return at::cat({at::cos(args), at::sin(args)}, 1);
}

void init_parameter(const std::string& name, at::Tensor& param, uint64_t seed) {
  at::NoGradGuard no_grad;
  const bool zero = name.find("bias") != std::string::npos || name.find("ada") != std::string::npos ||
                    name.find("final_proj") != std::string::npos;
  if (zero) {
    param.zero_();
    return;
  }
  init_normal(name, param, seed);
}

}  // namespace reel
