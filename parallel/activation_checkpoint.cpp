#include "reel/parallel/activation_checkpoint.hpp"

#include <torch/csrc/autograd/custom_function.h>

#include <array>

#include "reel/dist/require.hpp"
#include "reel/dist/trace.hpp"

namespace reel {

void ActivationCheckpointConfig::validate() const {
  require(mode != CheckpointMode::kEvery || every >= 1, "activation checkpointing every k-th block needs k >= 1");
}

bool ActivationCheckpointConfig::applies(size_t block) const {
  return mode == CheckpointMode::kFull || (mode == CheckpointMode::kEvery && block % static_cast<size_t>(every) == 0);
}

int64_t ActivationCheckpointConfig::recomputed_blocks(int64_t depth) const {
  int64_t n = 0;
  for (int64_t i = 0; i < depth; ++i) n += applies(static_cast<size_t>(i));
  return n;
}

namespace {

// The runner a checkpointed block recomputes with; lives as long as the model's runner.
struct Recompute {
  Model::BlockRunner inner;
};

// LibTorch's custom functions take defined tensors only: an undefined input (a model
// without conditioning has no cond; one without RoPE no tables) travels as an empty
// placeholder, and bit i of `defined` says which of the seven inputs were real.
constexpr int kInputs = 7;  // x, cond, and the five tensors of TokenContext

int64_t defined_mask(const std::array<at::Tensor, kInputs>& in) {
  int64_t mask = 0;
  for (int i = 0; i < kInputs; ++i) mask |= in[i].defined() ? int64_t{1} << i : 0;
  return mask;
}

at::Tensor placeholder_for(const at::Tensor& t) { return t.defined() ? t : at::empty({0}); }
at::Tensor restored(const at::Tensor& t, int64_t mask, int i) { return (mask >> i) & 1 ? t : at::Tensor(); }

// Forward: the block without autograd (inputs saved). Backward: recompute with autograd,
// then back-propagate the output gradient through the recomputation.
struct RecomputeFn : public torch::autograd::Function<RecomputeFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cond,
                            const at::Tensor& positions, const at::Tensor& groups, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& host_groups, int64_t index, int64_t recompute,
                            int64_t defined) {
    ctx->save_for_backward({x, cond, positions, groups, cos, sin, host_groups});
    ctx->saved_data["index"] = index;
    // The runner outlives every backward of the model it is installed on.
    ctx->saved_data["recompute"] = recompute;
    ctx->saved_data["defined"] = defined;
    at::NoGradGuard no_grad;
    const auto* r = reinterpret_cast<const Recompute*>(recompute);
    return r->inner(
        index, x, restored(cond, defined, 1),
        TokenContext{restored(positions, defined, 2), restored(groups, defined, 3), restored(cos, defined, 4),
                     restored(sin, defined, 5), restored(host_groups, defined, 6)});
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const int64_t defined = ctx->saved_data["defined"].toInt();
    for (int i = 0; i < kInputs; ++i) saved[i] = restored(saved[i], defined, i);
    auto x = saved[0].detach().requires_grad_(true);
    // cond is undefined for a model without conditioning: nothing to differentiate.
    auto cond = saved[1].defined() ? saved[1].detach().requires_grad_(true) : at::Tensor();
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
    const auto dcond = cond.defined() ? cond.grad() : at::Tensor();
    return {x.grad(),     dcond,        at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

Model::BlockRunner activation_checkpoint_runner(Model& model, const ActivationCheckpointConfig& config,
                                                Model::BlockRunner inner) {
  config.validate();
  if (!inner) {
    inner = [&model](size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
      return model.forward_block(i, x, cond, ctx);
    };
  }
  auto recompute = std::make_shared<Recompute>(Recompute{inner});
  return [config, recompute](size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
    if (!config.applies(i) || !at::GradMode::is_enabled()) return recompute->inner(i, x, cond, ctx);
    const std::array<at::Tensor, kInputs> in{
        x, cond, ctx.index, ctx.groups, ctx.rope_cos, ctx.rope_sin, ctx.host_groups};
    return RecomputeFn::apply(placeholder_for(x), placeholder_for(cond), placeholder_for(ctx.index),
                              placeholder_for(ctx.groups), placeholder_for(ctx.rope_cos), placeholder_for(ctx.rope_sin),
                              placeholder_for(ctx.host_groups), static_cast<int64_t>(i),
                              reinterpret_cast<int64_t>(recompute.get()), defined_mask(in));
  };
}

}  // namespace reel
