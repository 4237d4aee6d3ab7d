#include "reel/parallel/sequence/ring.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <chrono>

#include "reel/model/attention_blocks.hpp"

namespace reel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using Clock = std::chrono::steady_clock;

constexpr int kTagKv = 1, kTagGrad = 2;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct RingStep {
  const RingGroup& g;
  int r, n;  // this rank, ring size
  int next() const { return (r + 1) % n; }
  int prev() const { return (r + n - 1) % n; }
  int owner(int s) const { return (r - s + n) % n; }  // whose block this rank holds at step s

  // Starts passing `block` [2, B, H, n_owner, hd] on and receiving the previous rank's
  // (which belongs to owner(s + 1)) into `incoming`.
  WorkPtr pass(const at::Tensor& block, at::Tensor& incoming, int s, int tag) const {
    auto sizes = block.sizes().vec();
    sizes[3] = g.groups[owner(s + 1)].size(0);
    incoming = at::empty(sizes, block.options());
    if (g.stats) g.stats->bytes_sent += block.numel() * block.element_size();
    auto work = g.comm->sendrecv_async(block, next(), incoming, prev(), tag);
    if (!g.overlap) wait(work);
    return work;
  }
  void wait(const WorkPtr& work) const {
    const auto t = Clock::now();
    work->wait();
    if (g.stats) g.stats->wait_s += since(t);
  }
  AttentionBlock block(const at::Tensor& q, const at::Tensor& kv, int s, bool causal) const {
    return {q, kv[0], kv[1], g.groups[r], g.groups[owner(s)], causal};
  }
  bool visible(int s, bool causal) const { return block_visible(g.groups[r], g.groups[owner(s)], causal); }
};

const RingGroup& ring_of(AutogradContext* ctx) {
  return *reinterpret_cast<const RingGroup*>(ctx->saved_data["ring"].toInt());
}

struct RingAttentionFn : public torch::autograd::Function<RingAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            int64_t ring, bool causal) {
    const auto& g = *reinterpret_cast<const RingGroup*>(ring);
    const RingStep step{g, g.comm->rank(), g.comm->size()};
    auto kv = at::stack({k, v});  // [2, B, H, Lk, hd]: one transfer per step
    PartialAttention acc;
    for (int s = 0; s < step.n; ++s) {
      at::Tensor incoming;
      WorkPtr work = s + 1 < step.n ? step.pass(kv, incoming, s, kTagKv) : nullptr;
      if (step.visible(s, causal)) {
        const auto t = Clock::now();
        const auto block = step.block(q, kv, s, causal);
        merge_partial(acc, block_forward(block));
        if (g.stats) {
          g.stats->compute_s += since(t);
          g.stats->work += block_work(block);
        }
      }
      if (work) {
        step.wait(work);  // the next block must have arrived before it is used
        kv = incoming;
      }
    }
    auto out = acc.out.to(q.scalar_type());
    ctx->save_for_backward({q, k, v, out, acc.lse});
    ctx->saved_data["ring"] = ring;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto& g = ring_of(ctx);
    const bool causal = ctx->saved_data["causal"].toBool();
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const RingStep step{g, g.comm->rank(), g.comm->size()};
    const auto dout = grads[0].contiguous();
    auto kv = at::stack({k, v});
    const auto acc = lse.options();  // fp32 (fp64 for fp64 inputs)
    at::Tensor dq = at::zeros(q.sizes(), acc);
    at::Tensor grad_acc = at::zeros(kv.sizes(), acc);  // [2, B, H, n, hd] dK/dV of the block held
    WorkPtr grad_work;
    for (int s = 0; s < step.n; ++s) {
      at::Tensor incoming, grad_in;
      WorkPtr kv_work = s + 1 < step.n ? step.pass(kv, incoming, s, kTagKv) : nullptr;
      at::Tensor contribution;
      if (step.visible(s, causal)) {
        const auto t = Clock::now();
        // The final out and lse: each block's backward gives exactly its share.
        auto b = block_backward(step.block(q, kv, s, causal), dout, out, lse);
        dq.add_(b.dq);
        contribution = at::stack({b.dk, b.dv});
        if (g.stats) g.stats->compute_s += since(t);
      }
      if (grad_work) step.wait(grad_work);  // this block's accumulator, from the previous rank
      if (contribution.defined()) grad_acc.add_(contribution);
      // Pass the accumulator on with its block; the last pass brings each one home.
      grad_work = step.pass(grad_acc, grad_in, s, kTagGrad);
      grad_acc = grad_in;
      if (kv_work) {
        step.wait(kv_work);
        kv = incoming;
      }
    }
    step.wait(grad_work);  // grad_acc is now this rank's own dK/dV, from every query block
    return {dq.to(q.scalar_type()), grad_acc[0].to(k.scalar_type()), grad_acc[1].to(v.scalar_type()), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor ring_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const RingGroup& ring,
                          bool causal) {
  TORCH_CHECK(ring.comm && ring.comm->size() > 1, "ring attention needs a ring of at least 2 ranks");
  TORCH_CHECK(static_cast<int>(ring.groups.size()) == ring.comm->size(),
              "one token-group list per ring rank: ", ring.groups.size(), " for a ring of ", ring.comm->size());
  TORCH_CHECK(q.size(2) == ring.groups[ring.comm->rank()].size(0) && k.size(2) == q.size(2),
              "ring attention: this rank holds ", ring.groups[ring.comm->rank()].size(0), " tokens, got q ", q.sizes(),
              " k ", k.sizes());
  return RingAttentionFn::apply(q.contiguous(), k.contiguous(), v.contiguous(), reinterpret_cast<int64_t>(&ring),
                                causal);
}

}  // namespace reel
