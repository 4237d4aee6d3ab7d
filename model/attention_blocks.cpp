#include "reel/model/attention_blocks.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

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
  return {slice(b.q, qt), slice(b.k, kt), slice(b.v, kt), b.q_group.narrow(0, qt.start, qt.len),
          b.k_group.narrow(0, kt.start, kt.len),
          // A tile whose keys all precede its queries' groups needs no mask (masking costs
          // about half as much again as the scores themselves on CPU).
          b.causal && kt.last > qt.first};
}
bool tile_visible(const AttentionBlock& b, const Tile& qt, const Tile& kt) { return !b.causal || kt.first <= qt.last; }

PartialAttention chunk_forward(const AttentionBlock& b) {
  auto s = scores(b);
  auto m = finite_or_zero(std::get<0>(s.max(-1, /*keepdim=*/true)));  // [B, H, Lq, 1]
  auto p = at::exp(s - m);                                            // 0 where masked
  auto l = p.sum(-1, /*keepdim=*/true);                               // 0 for empty rows
  auto lse = (at::log(l) + m).squeeze(-1);                            // -inf for empty rows
  auto out = at::matmul(p / at::where(l.eq(0), at::ones_like(l), l), b.v.to(p.scalar_type()));
  return {out, lse};
}

// ---- Fused runs -------------------------------------------------------------------------

at::ScalarType lse_type(const at::Tensor& q) { return q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }
double softmax_scale(const at::Tensor& q) { return 1.0 / std::sqrt(static_cast<double>(q.size(-1))); }

// [begin, end) of each maximal non-decreasing piece of g [n].
std::vector<std::pair<int64_t, int64_t>> sorted_pieces(const int64_t* g, int64_t n) {
  std::vector<std::pair<int64_t, int64_t>> pieces;
  for (int64_t i = 0; i < n; ++i) {
    if (i == 0 || g[i] < g[i - 1]) pieces.push_back({i, i});
    pieces.back().second = i + 1;
  }
  return pieces;
}

at::Tensor host_groups(const at::Tensor& groups) { return groups.to(at::kCPU, at::kLong).contiguous(); }

bool cuda_flash(const at::Tensor& q) {
  const bool half = q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  return q.is_cuda() && half && q.size(-1) <= 256 && q.size(-1) % 8 == 0;
}

// Dropout is off: the kernels' random state is never read (empty, as LibTorch passes it).
at::Tensor no_rng_state() { return at::empty({}, at::kLong); }

// One fused call without mask: out [B, H, Lq, hd] in q's dtype, lse [B, H, Lq] (lse_type).
PartialAttention kernel_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  if (!q.is_cuda()) {
    auto r = at::_scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, /*is_causal=*/false, std::nullopt, scale);
    return {std::get<0>(r), std::get<1>(r)};
  }
  if (cuda_flash(q)) {
    auto r = at::_scaled_dot_product_flash_attention(q, k, v, 0.0, false, /*return_debug_mask=*/false, scale);
    return {std::get<0>(r), std::get<1>(r)};
  }
  // Memory-efficient attention pads its lse to a multiple of 32 rows.
  auto r = at::_scaled_dot_product_efficient_attention(q, k, v, std::nullopt, /*compute_log_sumexp=*/true, 0.0, false,
                                                       scale);
  return {std::get<0>(r), std::get<1>(r).narrow(-1, 0, q.size(2))};
}

// The kernel's backward of one call given the out and lse it is to use: (dq, dk, dv) in
// q's dtype.
std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_backward(const at::Tensor& dout, const at::Tensor& q,
                                                               const at::Tensor& k, const at::Tensor& v,
                                                               const at::Tensor& out, const at::Tensor& lse,
                                                               double scale) {
  if (!q.is_cuda()) {
    return at::_scaled_dot_product_flash_attention_for_cpu_backward(dout, q, k, v, out, lse, 0.0, false, std::nullopt,
                                                                    scale);
  }
  if (cuda_flash(q)) {
    return at::_scaled_dot_product_flash_attention_backward(dout, q, k, v, out, lse.contiguous(), at::Tensor(),
                                                            at::Tensor(), q.size(2), k.size(2), 0.0, false,
                                                            no_rng_state(), no_rng_state(), scale);
  }
  const int64_t lq = q.size(2), padded = (lq + 31) / 32 * 32;  // the forward's padded lse
  auto lse_padded = at::constant_pad_nd(lse, {0, padded - lq}, 0.0).contiguous();
  auto r = at::_scaled_dot_product_efficient_attention_backward(dout, q, k, v, at::Tensor(), out, lse_padded,
                                                                no_rng_state(), no_rng_state(), 0.0,
                                                                {true, true, true, false}, false, scale);
  return {std::get<0>(r), std::get<1>(r), std::get<2>(r)};
}

// A gradient of the lse through the same kernel: with a zero column added to q, k and v,
// -dlse added to out and 1 to dout, the kernel's D = rowsum(dout * out) becomes D - dlse
// and dS = P * (dP - D + dlse), while S, P and dP are unchanged (8 columns keep CUDA's
// alignment; only the first carries values). The scale stays that of the real head size.
std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_backward_with_lse_grad(const at::Tensor& dout,
                                                                             const at::Tensor& q, const at::Tensor& k,
                                                                             const at::Tensor& v, const at::Tensor& out,
                                                                             const at::Tensor& lse,
                                                                             const at::Tensor& dlse, double scale) {
  const int64_t hd = q.size(-1);
  auto pad = [](const at::Tensor& t) { return at::constant_pad_nd(t, {0, 8}, 0.0); };
  auto extra = [&](const at::Tensor& t, const at::Tensor& first) {  // [B, H, L, hd + 8], column hd = first
    auto r = pad(t);
    r.select(-1, hd).copy_(first);
    return r;
  };
  auto [dq, dk, dv] =
      kernel_backward(extra(dout, at::ones_like(lse)), pad(q), pad(k), pad(v), extra(out, -dlse), lse, scale);
  return {dq.narrow(-1, 0, hd), dk.narrow(-1, 0, hd), dv.narrow(-1, 0, hd)};
}

// Empty rows (no visible key): out 0, lse -inf.
PartialAttention nothing_seen(const at::Tensor& q, at::ScalarType out_dtype) {
  auto out = at::zeros(q.sizes(), q.options().dtype(out_dtype));
  return {out,
          at::full(out.sizes().slice(0, 3), -std::numeric_limits<double>::infinity(), q.options().dtype(lse_type(q)))};
}

// One run's forward: one kernel call per key span, merged through the lse (in fp32 at
// least) when there are several.
PartialAttention run_forward(const AttentionBlock& b, const QueryRun& run, at::ScalarType out_dtype) {
  const auto q = b.q.narrow(2, run.start, run.len);
  if (run.keys.empty()) return nothing_seen(q, out_dtype);
  PartialAttention acc;
  for (const auto& s : run.keys) {
    auto part = kernel_forward(q, b.k.narrow(2, s.start, s.len), b.v.narrow(2, s.start, s.len), softmax_scale(q));
    if (run.keys.size() > 1) part.out = part.out.to(acc_type(q));
    merge_partial(acc, part);
  }
  acc.out = acc.out.to(out_dtype);
  return acc;
}

}  // namespace

std::optional<std::vector<QueryRun>> query_runs(const at::Tensor& q_group, const at::Tensor& k_group, bool causal) {
  const int64_t lq = q_group.numel(), lk = k_group.numel();
  const std::vector<KeySpan> all = lk > 0 ? std::vector<KeySpan>{{0, lk}} : std::vector<KeySpan>{};
  if (!causal) return std::vector<QueryRun>{{0, lq, all}};
  const auto qh = host_groups(q_group), kh = host_groups(k_group);
  const int64_t *qg = qh.data_ptr<int64_t>(), *kg = kh.data_ptr<int64_t>();
  const auto pieces = sorted_pieces(kg, lk);
  const auto q_pieces = sorted_pieces(qg, lq).size();
  if (int64_t(pieces.size()) > kMaxSortedPieces || int64_t(q_pieces) > kMaxSortedPieces) return std::nullopt;
  std::vector<QueryRun> runs;
  for (int64_t i = 0, j; i < lq; i = j) {
    for (j = i + 1; j < lq && qg[j] == qg[i];) ++j;  // queries [i, j): one frame-group
    std::vector<KeySpan> keys;
    for (const auto& [a, e] : pieces) {  // keys of groups <= qg[i]: a prefix of each sorted piece
      const int64_t n = std::upper_bound(kg + a, kg + e, qg[i]) - (kg + a);
      if (n > 0) keys.push_back({a, n});
    }
    auto same = [&](const QueryRun& r) {
      return r.keys.size() == keys.size() &&
             std::equal(keys.begin(), keys.end(), r.keys.begin(),
                        [](const KeySpan& x, const KeySpan& y) { return x.start == y.start && x.len == y.len; });
    };
    if (!runs.empty() && same(runs.back())) {
      runs.back().len += j - i;
    } else {
      runs.push_back({i, j - i, std::move(keys)});
    }
  }
  return runs;
}

bool fused_kernel_available(const at::Tensor& q) {
  const auto t = q.scalar_type();
  if (!q.is_cuda()) {
    return q.device().is_cpu() && (t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf);
  }
  return t == at::kFloat || cuda_flash(q);
}

bool use_fused(const AttentionBlock& b, std::vector<QueryRun>& runs) {
  if (!fused_kernel_available(b.q)) return false;
  auto r = query_runs(b.q_group, b.k_group, b.causal);
  if (r) runs = std::move(*r);
  return r.has_value();
}

PartialAttention fused_forward(const AttentionBlock& b, const std::vector<QueryRun>& runs, at::ScalarType out_dtype) {
  std::vector<at::Tensor> outs, lses;
  for (const auto& run : runs) {
    auto part = run_forward(b, run, out_dtype);
    outs.push_back(part.out);
    lses.push_back(part.lse.to(lse_type(b.q)));
  }
  if (outs.size() == 1) return {outs[0], lses[0]};
  return {at::cat(outs, 2), at::cat(lses, 2)};
}

BlockGrads fused_backward(const AttentionBlock& b, const std::vector<QueryRun>& runs, const at::Tensor& dout,
                          const at::Tensor& out, const at::Tensor& lse, const at::Tensor& dlse) {
  const auto opts = b.q.options().dtype(acc_type(b.q));
  const double scale = softmax_scale(b.q);
  BlockGrads r{at::zeros(b.q.sizes(), opts), at::zeros(b.k.sizes(), opts), at::zeros(b.v.sizes(), opts)};
  const auto row_lse = lse.to(lse_type(b.q));
  for (const auto& run : runs) {
    auto rows = [&](const at::Tensor& t) { return t.narrow(2, run.start, run.len); };
    const auto q = rows(b.q), g = rows(dout), o = rows(out).to(b.q.scalar_type()), l = rows(row_lse);
    for (const auto& s : run.keys) {
      const auto k = b.k.narrow(2, s.start, s.len), v = b.v.narrow(2, s.start, s.len);
      auto [dq, dk, dv] = dlse.defined() ? kernel_backward_with_lse_grad(g, q, k, v, o, l, rows(dlse), scale)
                                         : kernel_backward(g, q, k, v, o, l, scale);
      rows(r.dq).add_(dq);
      r.dk.narrow(2, s.start, s.len).add_(dk);
      r.dv.narrow(2, s.start, s.len).add_(dv);
    }
  }
  return r;
}

bool block_visible(const at::Tensor& q_group, const at::Tensor& k_group, bool causal) {
  if (!causal) return true;
  return k_group.min().item<int64_t>() <= q_group.max().item<int64_t>();
}

int64_t block_work(const AttentionBlock& b) {
  std::vector<QueryRun> runs;
  int64_t work = 0;
  if (use_fused(b, runs)) {
    for (const auto& run : runs) {
      for (const auto& s : run.keys) work += run.len * s.len;
    }
    return work;
  }
  const int64_t len = tile_length(b.q.size(0) * b.q.size(1));
  const auto kt = tiles(b.k_group, len);
  for (const auto& qt : tiles(b.q_group, len)) {
    for (const auto& t : kt) work += tile_visible(b, qt, t) ? qt.len * t.len : 0;
  }
  return work;
}

PartialAttention block_forward(const AttentionBlock& b) {
  std::vector<QueryRun> runs;
  if (use_fused(b, runs)) return fused_forward(b, runs, acc_type(b.q));
  const int64_t len = tile_length(b.q.size(0) * b.q.size(1));
  const auto kt = tiles(b.k_group, len);
  std::vector<at::Tensor> outs, lses;
  for (const auto& qt : tiles(b.q_group, len)) {
    PartialAttention acc;
    for (const auto& t : kt) {
      if (tile_visible(b, qt, t)) merge_partial(acc, chunk_forward(tile_block(b, qt, t)));
    }
    if (!acc.out.defined()) acc = nothing_seen(b.q.narrow(2, qt.start, qt.len), acc_type(b.q));
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

BlockGrads block_backward(const AttentionBlock& b, const at::Tensor& dout, const at::Tensor& out,
                          const at::Tensor& lse) {
  std::vector<QueryRun> runs;
  if (use_fused(b, runs)) return fused_backward(b, runs, dout, out, lse);
  const auto acc = acc_type(b.q);
  const double scale = softmax_scale(b.q);
  const auto g = dout.to(acc), q = b.q.to(acc), row_lse = lse.to(acc).unsqueeze(-1);
  const auto row_d = softmax_rowsum(dout, out).unsqueeze(-1);
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
    auto g = block_backward(b, dout, s[5], s[6]);
    return {g.dq.to(b.q.scalar_type()),
            g.dk.to(b.k.scalar_type()),
            g.dv.to(b.v.scalar_type()),
            at::Tensor(),
            at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor blockwise_attention(const AttentionBlock& b) {
  return BlockwiseAttentionFn::apply(b.q, b.k, b.v, b.q_group.to(b.q.device()), b.k_group.to(b.q.device()), b.causal);
}

}  // namespace reel
