#include "parallel/sequence/block_attention.hpp"

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

}  // namespace

bool block_visible(const at::Tensor& q_group, const at::Tensor& k_group, bool causal) {
  if (!causal) return true;
  return k_group.min().item<int64_t>() <= q_group.max().item<int64_t>();
}

PartialAttention block_forward(const AttentionBlock& b) {
  auto s = scores(b);
  auto m = finite_or_zero(std::get<0>(s.max(-1, /*keepdim=*/true)));  // [B, H, Lq, 1]
  auto p = at::exp(s - m);                                              // 0 where masked
  auto l = p.sum(-1, /*keepdim=*/true);                                  // 0 for empty rows
  auto lse = (at::log(l) + m).squeeze(-1);                               // -inf for empty rows
  auto out = at::matmul(p / at::where(l.eq(0), at::ones_like(l), l), b.v.to(p.scalar_type()));
  return {out, lse};
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
  auto p = at::exp(scores(b) - lse.to(acc).unsqueeze(-1));  // [B, H, Lq, Lk], 0 where masked
  auto g = dout.to(acc);
  BlockGrads r;
  r.dv = at::matmul(p.transpose(-2, -1), g);
  auto ds = p * (at::matmul(g, b.v.to(acc).transpose(-2, -1)) - d.to(acc).unsqueeze(-1));
  r.dq = at::matmul(ds, b.k.to(acc)).mul_(scale);
  r.dk = at::matmul(ds.transpose(-2, -1), b.q.to(acc)).mul_(scale);
  return r;
}

}  // namespace reel
