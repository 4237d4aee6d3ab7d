#include "parallel/activation_checkpoint.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>

#include "dist/trace.hpp"

namespace reel {

void ActivationCheckpointConfig::validate() const {
  if (mode != "none" && mode != "full" && mode != "every") {
    throw std::invalid_argument("activation checkpointing must be none, full or every, got '" + mode + "'");
  }
  if (mode == "every" && every < 1) throw std::invalid_argument("activation checkpointing every k-th block needs k >= 1");
}

bool ActivationCheckpointConfig::applies(size_t block) const {
  return mode == "full" || (mode == "every" && block % static_cast<size_t>(every) == 0);
}

int64_t ActivationCheckpointConfig::recomputed_blocks(int64_t depth) const {
  int64_t n = 0;
  for (int64_t i = 0; i < depth; ++i) n += applies(static_cast<size_t>(i));
  return n;
}

namespace {

// The runner a checkpointed block recomputes with; lives as long as the model's runner.
struct Recompute {
  WorldModelImpl::BlockRunner inner;
};

// Forward: the block without autograd (inputs saved). Backward: recompute with autograd,
// then back-propagate the output gradient through the recomputation.
struct RecomputeFn : public torch::autograd::Function<RecomputeFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cond,
                            const at::Tensor& positions, const at::Tensor& groups, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& host_groups, int64_t index, int64_t recompute) {
    ctx->save_for_backward({x, cond, positions, groups, cos, sin, host_groups});
    ctx->saved_data["index"] = index;
    // The runner outlives every backward of the model it is installed on.
    ctx->saved_data["recompute"] = recompute;
    at::NoGradGuard no_grad;
    const auto* r = reinterpret_cast<const Recompute*>(recompute);
    return r->inner(index, x, cond, TokenContext{positions, groups, cos, sin, host_groups});
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0].detach().requires_grad_(true), cond = saved[1].detach().requires_grad_(true);
    const auto* r = reinterpret_cast<const Recompute*>(ctx->saved_data["recompute"].toInt());
    at::Tensor out;
    {
      // Traced: the re-run only (the back-propagation below ends in FSDP's hooks, which
      // close the block's fsdp.backward span: this one must close first).
      trace::ScopedSpan span("fsdp.recompute", "fsdp");
      span.arg("block", ctx->saved_data["index"].toInt());
      at::AutoGradMode grad_on(true);
      out = r->inner(ctx->saved_data["index"].toInt(), x, cond,
                     TokenContext{saved[2], saved[3], saved[4], saved[5], saved[6]});
    }
    // Into every leaf: x and cond here, and the block's parameters (FSDP's hooks see them).
    torch::autograd::backward({out}, {grads[0]});
    return {x.grad(), cond.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

WorldModelImpl::BlockRunner activation_checkpoint_runner(WorldModelImpl& model, const ActivationCheckpointConfig& config,
                                              WorldModelImpl::BlockRunner inner) {
  config.validate();
  if (!inner) {
    inner = [&model](size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
      return model.run_block(i, x, cond, ctx);
    };
  }
  auto recompute = std::make_shared<Recompute>(Recompute{inner});
  return [config, recompute](size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
    if (!config.applies(i) || !at::GradMode::is_enabled()) return recompute->inner(i, x, cond, ctx);
    return RecomputeFn::apply(x, cond, ctx.index, ctx.groups, ctx.rope_cos, ctx.rope_sin, ctx.host_groups,
                              static_cast<int64_t>(i), reinterpret_cast<int64_t>(recompute.get()));
  };
}

}  // namespace reel
