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

// A run of tokens [start, start + len) whose frame-groups rise by 0 or 1 from token to
// token, at most `longest` long, and the groups it spans. A contiguous piece of the clip
// is one run (or several, cut at `longest`); a zigzag share is two pieces, so two runs
// at least. Tiling only saves work: the masks keep any tiling exact.
struct Tile {
  int64_t start, len, first, last;
};

// The tile length for B x H = batch_heads: the largest power of two up to kKeyChunk
// whose square times batch_heads stays within kTileElements (at least 32).
int64_t tile_length(int64_t batch_heads) {
  int64_t len = kKeyChunk;
  while (len > 32 && batch_heads * len * len > kTileElements) len /= 2;
  return len;
}

std::vector<Tile> tiles(const at::Tensor& groups, int64_t longest) {
  const auto g = groups.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = g.data_ptr<int64_t>();
  std::vector<Tile> out;
  for (int64_t i = 0; i < g.numel(); ++i) {
    // A new run where the groups go back or skip one (another piece of the clip starts).
    if (out.empty() || out.back().len == longest || p[i] < p[i - 1] || p[i] > p[i - 1] + 1) {
      out.push_back({i, 0, p[i], p[i]});
    }
    out.back().len++;
    out.back().last = p[i];
  }
  return out;
}

// The sub-block of query tile qt and key tile kt; whether any query of it sees any key.
AttentionBlock tile_block(const AttentionBlock& b, const Tile& qt, const Tile& kt) {
  // Contiguous copies (small: [B, H, tile, hd]): batched matmuls over strided slices
  // are several times slower on CPU.
  auto slice = [](const at::Tensor& t, const Tile& r) { return t.narrow(2, r.start, r.len).contiguous(); };
  return {slice(b.q, qt), slice(b.k, kt), slice(b.v, kt),
          b.q_group.narrow(0, qt.start, qt.len), b.k_group.narrow(0, kt.start, kt.len),
          // A tile whose keys all precede its queries' groups needs no mask (masking costs
          // about half as much again as the scores themselves on CPU).
          b.causal && kt.last > qt.first};
}
bool tile_visible(const AttentionBlock& b, const Tile& qt, const Tile& kt) { return !b.causal || kt.first <= qt.last; }

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

int64_t block_work(const at::Tensor& q_group, const at::Tensor& k_group, bool causal, int64_t batch_heads) {
  const AttentionBlock b{at::Tensor(), at::Tensor(), at::Tensor(), q_group, k_group, causal};
  const int64_t len = tile_length(batch_heads);
  const auto kt = tiles(k_group, len);
  int64_t work = 0;
  for (const auto& qt : tiles(q_group, len)) {
    for (const auto& t : kt) work += tile_visible(b, qt, t) ? qt.len * t.len : 0;
  }
  return work;
}

PartialAttention block_forward(const AttentionBlock& b) {
  const int64_t len = tile_length(b.q.size(0) * b.q.size(1));
  const auto kt = tiles(b.k_group, len);
  std::vector<at::Tensor> outs, lses;
  for (const auto& qt : tiles(b.q_group, len)) {
    PartialAttention acc;
    for (const auto& t : kt) {
      if (tile_visible(b, qt, t)) merge_partial(acc, chunk_forward(tile_block(b, qt, t)));
    }
    if (!acc.out.defined()) {  // these queries see none of the block's keys
      auto q = b.q.narrow(2, qt.start, qt.len);
      acc.out = at::zeros(q.sizes(), q.options().dtype(acc_type(q)));
      acc.lse = at::full(acc.out.sizes().slice(0, 3), -std::numeric_limits<double>::infinity(), acc.out.options());
    }
    outs.push_back(acc.out);
    lses.push_back(acc.lse);
  }
  if (outs.size() == 1) return {outs[0], lses[0]};
  return {at::cat(outs, 2), at::cat(lses, 2)};
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
  r.dk = at::zeros(b.k.sizes(), q.options());
  r.dv = at::zeros(b.v.sizes(), q.options());
  const int64_t len = tile_length(b.q.size(0) * b.q.size(1));
  const auto kt = tiles(b.k_group, len);
  for (const auto& qt : tiles(b.q_group, len)) {
    const auto gq = g.narrow(2, qt.start, qt.len), qq = q.narrow(2, qt.start, qt.len);
    const auto lse_q = row_lse.narrow(2, qt.start, qt.len), d_q = row_d.narrow(2, qt.start, qt.len);
    for (const auto& t : kt) {
      if (!tile_visible(b, qt, t)) continue;
      const auto c = tile_block(b, qt, t);
      auto p = at::exp(scores(c) - lse_q);  // [B, H, tile, tile], 0 where masked
      r.dv.narrow(2, t.start, t.len).add_(at::matmul(p.transpose(-2, -1), gq));
      auto ds = p * (at::matmul(gq, c.v.to(acc).transpose(-2, -1)) - d_q);
      r.dq.narrow(2, qt.start, qt.len).add_(at::matmul(ds, c.k.to(acc)), scale);
      r.dk.narrow(2, t.start, t.len).add_(at::matmul(ds.transpose(-2, -1), qq), scale);
    }
  }
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
