#include "model/attention.hpp"

#include "model/attention_blocks.hpp"

#include <cmath>
#include <limits>

namespace reel {
namespace {

// [Lq, Lk] additive bias: 0 where visible, -inf where a key is in a later frame-group.
at::Tensor causal_bias(const AttentionInputs& in, at::ScalarType dtype) {
  auto visible = in.k_group.unsqueeze(0).le(in.q_group.unsqueeze(1)).to(in.q.device());
  return at::zeros(visible.sizes(), in.q.options().dtype(dtype))
      .masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity());
}

AttentionResult math_attention(const AttentionInputs& in) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.size(-1)));
  // Softmax statistics in at least fp32 (16-bit inputs are widened).
  const auto acc = at::isReducedFloatingType(in.q.scalar_type()) ? at::kFloat : in.q.scalar_type();
  auto scores = at::matmul(in.q, in.k.transpose(-2, -1)).mul(scale).to(acc);  // [B,H,Lq,Lk]
  if (in.causal) scores = scores + causal_bias(in, acc);
  auto lse = at::logsumexp(scores, -1);                                  // [B, H, Lq]
  auto probs = at::exp(scores - lse.unsqueeze(-1)).to(in.v.scalar_type());
  return {at::matmul(probs, in.v), lse};
}

}  // namespace

AttentionResult attention(const AttentionInputs& in) {
  if (in.q.is_cuda()) {
    const bool half = in.q.scalar_type() == at::kBFloat16 || in.q.scalar_type() == at::kHalf;
    if (!in.causal && half && in.q.size(-1) <= 256 && in.q.size(-1) % 8 == 0) {
      // FlashAttention-2 (no mask to apply): output and the log-sum-exp [B, H, Lq].
      auto r = at::_scaled_dot_product_flash_attention(in.q, in.k, in.v);
      return {std::get<0>(r), std::get<1>(r)};
    }
    at::Tensor bias;
    if (in.causal) bias = causal_bias(in, in.q.scalar_type()).expand({in.q.size(0), in.q.size(1), in.q.size(2), in.k.size(2)});
    // Frame-causal masks are not FlashAttention's causal triangle: the memory-efficient
    // kernel takes the additive mask and also returns the log-sum-exp.
    auto result = at::_scaled_dot_product_efficient_attention(in.q, in.k, in.v, bias,
                                                              /*compute_log_sumexp=*/true);
    return {std::get<0>(result), std::get<1>(result).narrow(-1, 0, in.q.size(2))};
  }
  // Long sequences: exact attention with memory linear in the length (the explicit
  // [Lq, Lk] scores and probabilities autograd would keep grow with its square).
  if (in.k.size(2) > kKeyChunk) {
    return {blockwise_attention({in.q, in.k, in.v, in.q_group, in.k_group, in.causal}), at::Tensor()};
  }
  return math_attention(in);
}

}  // namespace reel
