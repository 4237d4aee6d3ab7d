#include "model/attention_blocks.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>

namespace reel {
namespace {

at::ScalarType acc_type(const at::Tensor& t) {
  return at::isReducedFloatingType(t.scalar_type()) ? at::kFloat : t.scalar_type();
}

// Scaled scores [B, H, Lq, Lk] in the accumulation dtype, -inf where masked.
at::Tensor scores(const AttentionBlock& b) {
  const auto acc = acc_type(b.q);
  const double scale = 1.0 / std::sqrt(static_cast<double>(b.q.size(-1)));
  auto s = at::matmul(b.q.to(acc), b.k.to(acc).transpose(-2, -1)).mul_(scale);
  if (b.causal) {
    auto hidden = b.k_group.to(s.device()).unsqueeze(0).gt(b.q_group.to(s.device()).unsqueeze(1));  // [Lq, Lk]
    s.masked_fill_(hidden, -std::numeric_limits<double>::infinity());
  }
  return s;
}

// x with -inf replaced by 0 (rows that saw nothing), so differences stay finite.
at::Tensor finite_or_zero(const at::Tensor& x) { return at::where(at::isinf(x), at::zeros_like(x), x); }

// Calls fn(chunk, start) for the block's keys kKeyChunk at a time.
template <typename Fn>
void for_each_key_chunk(const AttentionBlock& b, Fn&& fn) {
  const int64_t lk = b.k.size(2);
  for (int64_t start = 0; start < lk; start += kKeyChunk) {
    const int64_t n = std::min(kKeyChunk, lk - start);
    if (n == lk) {
      fn(b, start);
      return;
    }
    fn(AttentionBlock{b.q, b.k.narrow(2, start, n), b.v.narrow(2, start, n), b.q_group,
                      b.k_group.narrow(0, start, n), b.causal},
       start);
  }
}

PartialAttention chunk_forward(const AttentionBlock& b) {
  auto s = scores(b);
  auto m = finite_or_zero(std::get<0>(s.max(-1, /*keepdim=*/true)));  // [B, H, Lq, 1]
  auto p = at::exp(s - m);                                              // 0 where masked
  auto l = p.sum(-1, /*keepdim=*/true);                                  // 0 for empty rows
  auto lse = (at::log(l) + m).squeeze(-1);                               // -inf for empty rows
  auto out = at::matmul(p / at::where(l.eq(0), at::ones_like(l), l), b.v.to(p.scalar_type()));
  return {out, lse};
}

}  // namespace

bool block_visible(const at::Tensor& q_group, const at::Tensor& k_group, bool causal) {
  if (!causal) return true;
  return k_group.min().item<int64_t>() <= q_group.max().item<int64_t>();
}

PartialAttention block_forward(const AttentionBlock& b) {
  PartialAttention acc;
  for_each_key_chunk(b, [&](const AttentionBlock& c, int64_t) { merge_partial(acc, chunk_forward(c)); });
  return acc;
}

void merge_partial(PartialAttention& acc, const PartialAttention& part) {
  if (!acc.out.defined()) {
    acc = part;
    return;
  }
  auto lse = at::logaddexp(acc.lse, part.lse);
  auto base = finite_or_zero(lse);  // both -inf: both weights exp(-inf) = 0
  auto wa = at::exp(acc.lse - base).unsqueeze(-1), wb = at::exp(part.lse - base).unsqueeze(-1);
  acc.out = acc.out * wa + part.out * wb;
  acc.lse = lse;
}

at::Tensor softmax_rowsum(const at::Tensor& dout, const at::Tensor& out) {
  const auto acc = acc_type(dout);
  return (dout.to(acc) * out.to(acc)).sum(-1);
}

BlockGrads block_backward(const AttentionBlock& b, const at::Tensor& dout, const at::Tensor& lse,
                          const at::Tensor& d) {
  const auto acc = acc_type(b.q);
  const double scale = 1.0 / std::sqrt(static_cast<double>(b.q.size(-1)));
  const auto g = dout.to(acc), q = b.q.to(acc), row_lse = lse.to(acc).unsqueeze(-1), row_d = d.to(acc).unsqueeze(-1);
  BlockGrads r;
  r.dq = at::zeros(q.sizes(), q.options());
  std::vector<at::Tensor> dk, dv;
  for_each_key_chunk(b, [&](const AttentionBlock& c, int64_t) {
    auto p = at::exp(scores(c) - row_lse);  // [B, H, Lq, chunk], 0 where masked
    dv.push_back(at::matmul(p.transpose(-2, -1), g));
    auto ds = p * (at::matmul(g, c.v.to(acc).transpose(-2, -1)) - row_d);
    r.dq.add_(at::matmul(ds, c.k.to(acc)), scale);
    dk.push_back(at::matmul(ds.transpose(-2, -1), q).mul_(scale));
  });
  r.dk = dk.size() == 1 ? dk[0] : at::cat(dk, 2);
  r.dv = dv.size() == 1 ? dv[0] : at::cat(dv, 2);
  return r;
}

namespace {

using torch::autograd::AutogradContext;

struct BlockwiseAttentionFn : public torch::autograd::Function<BlockwiseAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& q_group, const at::Tensor& k_group, bool causal) {
    auto r = block_forward({q, k, v, q_group, k_group, causal});
    auto out = r.out.to(q.scalar_type());
    ctx->save_for_backward({q, k, v, q_group, k_group, out, r.lse});
    ctx->saved_data["causal"] = causal;
    return out;
  }
  static torch::autograd::tensor_list backward(AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto s = ctx->get_saved_variables();
    const AttentionBlock b{s[0], s[1], s[2], s[3], s[4], ctx->saved_data["causal"].toBool()};
    const auto dout = grads[0].contiguous();
    auto g = block_backward(b, dout, s[6], softmax_rowsum(dout, s[5]));
    return {g.dq.to(b.q.scalar_type()), g.dk.to(b.k.scalar_type()), g.dv.to(b.v.scalar_type()), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor blockwise_attention(const AttentionBlock& b) {
  return BlockwiseAttentionFn::apply(b.q, b.k, b.v, b.q_group.to(b.q.device()), b.k_group.to(b.q.device()), b.causal);
}

}  // namespace reel
