#include "reel/parallel/sequence/ulysses.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <numeric>

namespace reel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

void count_bytes(const UlyssesGroup& g, const at::Tensor& input, int64_t kept_rows, int64_t row_elems) {
  if (g.bytes_sent) *g.bytes_sent += (input.size(0) - kept_rows) * row_elems * input.element_size();
}

// x [B, H, Lc, hd] -> [B, H/U, sum Lc, hd]. Rows of the exchange are tokens: rank j gets
// all Lc of mine for its heads; I get sum_i Lc_i for mine.
at::Tensor scatter_impl(const at::Tensor& x, const UlyssesGroup& g) {
  const int64_t u = g.comm->size(), b = x.size(0), h = x.size(1), lc = x.size(2), hd = x.size(3);
  const int64_t total = std::accumulate(g.counts.begin(), g.counts.end(), int64_t{0});
  // [B, U, H/U, Lc, hd] -> [U, Lc, B, H/U, hd]: destination-major rows of one token.
  auto send = x.reshape({b, u, h / u, lc, hd}).permute({1, 3, 0, 2, 4}).contiguous().view({u * lc, -1});
  auto recv = at::empty({total, send.size(1)}, send.options());
  count_bytes(g, send, lc, send.size(1));
  g.comm->all_to_all_async(send, recv, std::vector<int64_t>(u, lc), g.counts)->wait();
  // [sum Lc, B, H/U, hd] -> [B, H/U, sum Lc, hd]
  return recv.view({total, b, h / u, hd}).permute({1, 2, 0, 3}).contiguous();
}

// y [B, H/U, sum Lc, hd] -> [B, H, Lc, hd]: the inverse of scatter_impl.
at::Tensor gather_impl(const at::Tensor& y, const UlyssesGroup& g) {
  const int64_t u = g.comm->size(), b = y.size(0), hu = y.size(1), hd = y.size(3);
  const int64_t lc = g.counts.at(g.comm->rank());
  auto send = y.permute({2, 0, 1, 3}).contiguous().view({y.size(2), -1});  // [sum Lc, B*H/U*hd]
  auto recv = at::empty({u * lc, send.size(1)}, send.options());
  count_bytes(g, send, lc, send.size(1));
  g.comm->all_to_all_async(send, recv, g.counts, std::vector<int64_t>(u, lc))->wait();
  // [U, Lc, B, H/U, hd] -> [B, U, H/U, Lc, hd] -> [B, H, Lc, hd]
  return recv.view({u, lc, b, hu, hd}).permute({2, 0, 3, 1, 4}).reshape({b, u * hu, lc, hd});
}

// The group outlives every backward of the graph it was used in (the attention function
// that owns it lives as long as the model), so its address is saved.
const UlyssesGroup& group_of(AutogradContext* ctx) {
  return *reinterpret_cast<const UlyssesGroup*>(ctx->saved_data["group"].toInt());
}

// One autograd function per direction: forward takes this direction's all-to-all, backward
// the other's (scatter and gather are each other's inverse).
template <bool Scatter>
struct HeadsFn : public torch::autograd::Function<HeadsFn<Scatter>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    const auto& g = *reinterpret_cast<const UlyssesGroup*>(group);
    return Scatter ? scatter_impl(x, g) : gather_impl(x, g);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto& g = group_of(ctx);
    return {Scatter ? gather_impl(grads[0], g) : scatter_impl(grads[0], g), at::Tensor()};
  }
};

}  // namespace

at::Tensor scatter_heads(const at::Tensor& x, const UlyssesGroup& group) {
  return HeadsFn<true>::apply(x, reinterpret_cast<int64_t>(&group));
}

at::Tensor gather_heads(const at::Tensor& y, const UlyssesGroup& group) {
  return HeadsFn<false>::apply(y, reinterpret_cast<int64_t>(&group));
}

}  // namespace reel
