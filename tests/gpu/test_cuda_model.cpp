// The model's fused CUDA paths against the LibTorch reference on fresh random inputs,
// outputs and gradients. Relative error bounds (max |fused - ref| / max |ref|):
//   float32: 1e-5 (norm, RoPE);  bfloat16: 2e-2;  float16: 5e-3;
//   cuBLASLt linear (bf16 storage, fp32 accumulate): 2e-2 against the bf16 reference.
// Attention on CUDA (LibTorch's fused kernel) against the explicit reference, with lse.
// Skipped, with the reason, where there is no GPU.
#include <gtest/gtest.h>

#include "reel/model/attention.hpp"
#include "reel/model/ops.hpp"
#include "reel/model/rope.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

#define REEL_REQUIRE_GPU()                                                                   \
  if (!at::hasCUDA() || at::getNumGPUs() == 0)                                               \
  GTEST_SKIP() << "no CUDA device on this machine: the fused CUDA paths are checked on the " \
                  "GPU machine (scripts/gpu/run.sh)"

double bound(at::ScalarType t) { return t == at::kFloat ? 1e-5 : t == at::kHalf ? 5e-3 : 2e-2; }

double rel_error(const at::Tensor& got, const at::Tensor& want) {
  auto g = got.to(at::kDouble).cpu(), w = want.to(at::kDouble).cpu();
  return (g - w).abs().max().item<double>() / std::max(1e-12, w.abs().max().item<double>());
}

// Runs f on fresh leaves (copies of inputs) and returns the output and input gradients.
template <typename Fn>
std::vector<at::Tensor> run_with_grads(Fn&& f, const std::vector<at::Tensor>& inputs, const at::Tensor& dy) {
  std::vector<at::Tensor> leaves;
  for (const auto& x : inputs) leaves.push_back(x.detach().clone().set_requires_grad(true));
  auto y = f(leaves);
  y.backward(dy);
  std::vector<at::Tensor> out{y.detach()};
  for (auto& l : leaves) out.push_back(l.grad());
  return out;
}

template <typename Fused, typename Ref>
void compare(Fused&& fused, Ref&& ref, const std::vector<at::Tensor>& inputs, const at::Tensor& dy, double tol,
             const std::string& what) {
  auto a = run_with_grads(fused, inputs, dy), b = run_with_grads(ref, inputs, dy);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LT(rel_error(a[i], b[i]), tol)
        << what << (i == 0 ? " output" : " gradient of input " + std::to_string(i - 1));
  }
}

TEST(GpuModel, ModulatedNormMatchesReference) {
  REEL_REQUIRE_GPU();
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    auto o = at::TensorOptions(t).device(at::kCUDA);
    for (int64_t d : {48, 1024, 3000}) {
      auto x = at::randn({3, 37, d}, o) * 2 + 0.5, shift = at::randn({3, 37, d}, o), scale = at::randn({3, 37, d}, o);
      // Reference in float32 from the same (rounded) inputs, compared after rounding.
      compare([](auto& v) { return cuda::modulated_norm(v[0], v[1], v[2]); },
              [t](auto& v) {
                return reference::modulated_norm(v[0].to(at::kFloat), v[1].to(at::kFloat), v[2].to(at::kFloat)).to(t);
              },
              {x, shift, scale}, at::randn({3, 37, d}, o), bound(t),
              std::string(c10::toString(t)) + " d=" + std::to_string(d));
    }
  }
}

TEST(GpuModel, RopeMatchesReference) {
  REEL_REQUIRE_GPU();
  auto cfg = model_preset("tiny");
  for (auto t : {at::kFloat, at::kBFloat16, at::kHalf}) {
    auto o = at::TensorOptions(t).device(at::kCUDA);
    const int64_t hd = 64, l = 100;
    auto tables = rope_tables(token_positions(cfg, at::arange(l, at::kLong)), hd, 10000.0);
    auto x = at::randn({2, 3, l, hd}, o);
    compare([&](auto& v) { return cuda::rope(v[0], tables.cos, tables.sin); },
            [&](auto& v) { return reference::rope(v[0].to(at::kFloat), tables.cos, tables.sin).to(t); }, {x},
            at::randn({2, 3, l, hd}, o), bound(t), c10::toString(t));
  }
}

TEST(GpuModel, CublasLtLinearWithFusedBiasAndGeluMatchesReference) {
  REEL_REQUIRE_GPU();
  for (auto t : {at::kBFloat16, at::kHalf}) {
    auto o = at::TensorOptions(t).device(at::kCUDA);
    for (bool gelu : {false, true}) {
      for (bool with_bias : {true, false}) {
        auto x = at::randn({4, 33, 256}, o), w = at::randn({384, 256}, o) * 0.05;
        at::Tensor b = with_bias ? at::randn({384}, o) : at::Tensor();
        std::vector<at::Tensor> inputs{x, w};
        if (with_bias) inputs.push_back(b);
        auto bias_of = [&](auto& v) { return with_bias ? v[2] : at::Tensor(); };
        compare([&](auto& v) { return cuda::linear(v[0], v[1], bias_of(v), gelu); },
                [&](auto& v) {
                  auto bf = with_bias ? v[2].to(at::kFloat) : at::Tensor();
                  return reference::linear(v[0].to(at::kFloat), v[1].to(at::kFloat), bf, gelu).to(t);
                },
                inputs, at::randn({4, 33, 384}, o), 2e-2,
                std::string(c10::toString(t)) + (gelu ? " gelu" : "") + (with_bias ? " bias" : ""));
      }
    }
  }
}

// Finite differences in float64 of the fused kernels' own backward passes.
TEST(GpuModel, FusedKernelGradientsMatchFiniteDifferencesInDouble) {
  REEL_REQUIRE_GPU();
  auto o = at::TensorOptions(at::kDouble).device(at::kCUDA);
  auto cfg = model_preset("tiny");
  auto shift = at::randn({5, 64}, o), scale = at::randn({5, 64}, o), w = at::randn({5, 64}, o);
  expect_gradient_matches([&](const at::Tensor& x) { return (cuda::modulated_norm(x, shift, scale) * w).sum(); },
                          at::randn({5, 64}, o), "modulated_norm x");
  auto x = at::randn({5, 64}, o);
  expect_gradient_matches([&](const at::Tensor& s) { return (cuda::modulated_norm(x, shift, s) * w).sum(); },
                          at::randn({5, 64}, o), "modulated_norm scale");
  auto tables = rope_tables(token_positions(cfg, at::arange(16, at::kLong)), 12, 10000.0);
  auto wr = at::randn({1, 2, 16, 12}, o);
  expect_gradient_matches([&](const at::Tensor& q) { return (cuda::rope(q, tables.cos, tables.sin) * wr).sum(); },
                          at::randn({1, 2, 16, 12}, o), "rope");
}

// The fused, mask-free runs on the GPU (memory-efficient attention in fp32, FlashAttention-2
// in bf16) against the explicit reference on the CPU: out, lse and, in fp32, dq/dk/dv
// through the kernels' own backward.
TEST(GpuModel, FusedAttentionMatchesReferenceWithLse) {
  REEL_REQUIRE_GPU();
  auto cfg = model_preset("tiny");
  for (bool causal : {false, true}) {
    auto o = at::TensorOptions(at::kFloat).device(at::kCUDA);
    const int64_t l = 64;
    auto q = at::randn({2, 4, l, 32}, o), k = at::randn({2, 4, l, 32}, o), v = at::randn({2, 4, l, 32}, o);
    auto w = at::randn({2, 4, l, 32}, o);
    auto g = token_groups(cfg, at::arange(l, at::kLong));  // host groups, as the model passes them
    auto grads = [&](const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, bool reference) {
      auto qg = q0.detach().requires_grad_(true), kg = k0.detach().requires_grad_(true),
           vg = v0.detach().requires_grad_(true);
      AttentionInputs in{qg, kg, vg, g, g, causal};
      auto r = reference ? reference_attention(in) : attention(in);
      (r.out * w.to(r.out.device())).sum().backward();
      return std::vector<at::Tensor>{r.out.detach(), r.lse.detach(), qg.grad(), kg.grad(), vg.grad()};
    };
    const auto fused = grads(q, k, v, false), ref = grads(q.cpu(), k.cpu(), v.cpu(), true);
    const char* names[] = {"out", "lse", "dq", "dk", "dv"};
    for (int i = 0; i < 5; ++i) EXPECT_LT(rel_error(fused[i], ref[i]), 1e-4) << names[i] << ", causal " << causal;
    // bf16 (FlashAttention-2 per run), against the float32 reference.
    auto b16 = attention({q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), g, g, causal});
    EXPECT_LT(rel_error(b16.out, ref[0]), 3e-2) << "bf16 causal " << causal;
    EXPECT_LT(rel_error(b16.lse, ref[1]), 3e-2) << "bf16 causal " << causal;
  }
}

}  // namespace
}  // namespace reel::test
