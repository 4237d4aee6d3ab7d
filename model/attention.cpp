#include "reel/model/attention.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>

#include "reel/model/attention_blocks.hpp"

namespace reel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// [Lq, Lk] additive bias: 0 where visible, -inf where a key is in a later frame-group
// (the explicit reference only: at most kKeyChunk keys outside tests).
at::Tensor causal_bias(const AttentionInputs& in, at::ScalarType dtype) {
  auto visible = in.k_group.unsqueeze(0).le(in.q_group.unsqueeze(1)).to(in.q.device());
  return at::zeros(visible.sizes(), in.q.options().dtype(dtype))
      .masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity());
}

// The runs as flat numbers, saved with the graph: per run start, len, spans, then
// (start, len) of each span.
std::vector<int64_t> flatten(const std::vector<QueryRun>& runs) {
  std::vector<int64_t> flat;
  for (const auto& r : runs) {
    flat.insert(flat.end(), {r.start, r.len, int64_t(r.keys.size())});
    for (const auto& s : r.keys) flat.insert(flat.end(), {s.start, s.len});
  }
  return flat;
}

std::vector<QueryRun> unflatten(const std::vector<int64_t>& flat) {
  std::vector<QueryRun> runs;
  for (size_t i = 0; i < flat.size();) {
    QueryRun r{flat[i], flat[i + 1], {}};
    const int64_t spans = flat[i + 2];
    i += 3;
    for (int64_t s = 0; s < spans; ++s, i += 2) r.keys.push_back({flat[i], flat[i + 1]});
    runs.push_back(std::move(r));
  }
  return runs;
}

// The fused runs as one autograd function with both outputs differentiable: forward saves
// q, k, v, out and lse (no scores); backward is the kernels' own, per run (a gradient of
// the lse, when there is one, goes through the same kernels: fused_backward).
struct FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn> {
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const std::vector<int64_t>& runs) {
    ctx->set_materialize_grads(false);  // an unused lse costs nothing in backward
    auto r = fused_forward({q, k, v, at::Tensor(), at::Tensor(), false}, unflatten(runs), q.scalar_type());
    ctx->save_for_backward({q, k, v, r.out, r.lse});
    ctx->saved_data["runs"] = runs;
    return {r.out, r.lse};
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const auto &q = s[0], &k = s[1], &v = s[2], &out = s[3], &lse = s[4];
    if (!grads[0].defined() && !grads[1].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    const auto dout = grads[0].defined() ? grads[0] : at::zeros_like(out);
    auto g = fused_backward({q, k, v, at::Tensor(), at::Tensor(), false},
                            unflatten(ctx->saved_data["runs"].toIntVector()), dout, out, lse, grads[1]);
    return {g.dq.to(q.scalar_type()), g.dk.to(k.scalar_type()), g.dv.to(v.scalar_type()), at::Tensor()};
  }
};

}  // namespace

AttentionResult reference_attention(const AttentionInputs& in) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(in.q.size(-1)));
  // Softmax statistics in at least fp32 (16-bit inputs are widened).
  const auto acc = at::isReducedFloatingType(in.q.scalar_type()) ? at::kFloat : in.q.scalar_type();
  auto scores = at::matmul(in.q, in.k.transpose(-2, -1)).mul(scale).to(acc);  // [B, H, Lq, Lk]
  if (in.causal) scores = scores + causal_bias(in, acc);
  auto lse = at::logsumexp(scores, -1);  // [B, H, Lq]
  auto probs = at::exp(scores - lse.unsqueeze(-1)).to(in.v.scalar_type());
  return {at::matmul(probs, in.v), lse};
}

AttentionResult attention(const AttentionInputs& in) {
  const AttentionBlock b{in.q, in.k, in.v, in.q_group, in.k_group, in.causal};
  // The fused runs on CPU too, whatever the length. Measured on a 2-core Intel Xeon VM
  // (2026-12-06; frame-causal, groups of 64 tokens, H=4, fp32, forward + backward), fused
  // against explicit scores and against the tiles: B=2 hd=16 L=256 1.5 / 6.5 / 1.6 ms,
  // L=512 4.8 / 33 / 5.2, L=1024 18 / 275 / 17, L=4096 245 / - / 255; B=8 hd=64 L=256
  // 17 / 42 / 17, L=1024 216 / 1250 / 205, L=4096 3175 / - / 3418 (docs/sequence-parallel.md,
  // "Fused attention"). Faster than the explicit form at every length, as fast as the tiles
  // (within the noise of +-15%), and it returns a differentiable lse.
  std::vector<QueryRun> runs;
  if (use_fused(b, runs)) {
    auto r = FusedAttentionFn::apply(in.q, in.k, in.v, flatten(runs));
    return {r[0], r[1]};
  }
  // No fused kernel for this dtype or head size, or groups in too many pieces: exact
  // attention with memory linear in the length for long keys and on CUDA (the explicit
  // [Lq, Lk] scores and probabilities autograd would keep grow with its square).
  if (in.q.is_cuda() || in.k.size(2) > kKeyChunk) return {blockwise_attention(b), at::Tensor()};
  return reference_attention(in);
}

}  // namespace reel
