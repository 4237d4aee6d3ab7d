// The fused, mask-free attention (model/attention_blocks.hpp, "Fused, mask-free") against
// the explicit reference: outputs, lse and dq, dk, dv within 1e-5 (fp32) for full and
// frame-causal attention, even and uneven groups, queries that are a slice of the clip,
// Lq != Lk; and its memory, measured: linear in the length, not the [L, L] of a mask.
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

#include "reel/model/attention.hpp"
#include "reel/model/attention_blocks.hpp"

namespace reel::test {
namespace {

constexpr double kTol = 1e-5;

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>(), diff = (got - want).abs().max().item<double>();
  EXPECT_LE(diff, kTol * scale) << what << " differs by " << diff << " (largest " << scale << ")";
}

// Frame-group of each token for group sizes `sizes`, the first group numbered `first`.
at::Tensor groups_of(const std::vector<int64_t>& sizes, int64_t first = 0) {
  std::vector<at::Tensor> parts;
  for (size_t i = 0; i < sizes.size(); ++i) parts.push_back(at::full({sizes[i]}, first + int64_t(i), at::kLong));
  return at::cat(parts);
}

struct Grads {
  at::Tensor out, lse, dq, dk, dv;
};

// out, lse and the gradients of sum(out * w) + sum(lse * wl) (wl undefined: out only).
Grads run(const AttentionInputs& in, bool reference, const at::Tensor& w, const at::Tensor& wl = at::Tensor()) {
  auto q = in.q.detach().requires_grad_(), k = in.k.detach().requires_grad_(), v = in.v.detach().requires_grad_();
  const AttentionInputs x{q, k, v, in.q_group, in.k_group, in.causal};
  auto r = reference ? reference_attention(x) : attention(x);
  auto loss = (r.out * w).sum();
  if (wl.defined()) loss = loss + (r.lse * wl).sum();
  loss.backward();
  return {r.out.detach(), r.lse.detach(), q.grad(), k.grad(), v.grad()};
}

// attention() (the fused runs, as every case here is in frame-group order) against the
// reference: out, lse and the gradients of q, k and v.
void expect_fused_matches_reference(int64_t lq, int64_t lk, const at::Tensor& q_group, const at::Tensor& k_group,
                                    bool causal, const std::string& what, bool lse_grad = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto make = [&](int64_t l) { return at::empty({2, 3, l, 16}, at::kFloat).normal_(0, 1, gen); };
  const AttentionInputs in{make(lq), make(lk), make(lk), q_group, k_group, causal};
  std::vector<QueryRun> runs;
  ASSERT_TRUE(use_fused({in.q, in.k, in.v, q_group, k_group, causal}, runs)) << what;
  const auto w = make(lq), wl = lse_grad ? at::empty({2, 3, lq}).normal_(0, 1, gen) : at::Tensor();
  const auto got = run(in, false, w, wl), want = run(in, true, w, wl);
  expect_close(got.out, want.out, what + " out");
  expect_close(got.lse, want.lse, what + " lse");
  expect_close(got.dq, want.dq, what + " dq");
  expect_close(got.dk, want.dk, what + " dk");
  expect_close(got.dv, want.dv, what + " dv");
}

TEST(FusedAttention, FullAttentionMatchesTheReference) {
  const auto g = groups_of({40, 40, 40});
  expect_fused_matches_reference(120, 120, g, g, false, "full");
  expect_fused_matches_reference(50, 120, g.narrow(0, 70, 50), g, false, "full, Lq != Lk");
}

TEST(FusedAttention, FrameCausalWithEvenGroupsMatchesTheReference) {
  const auto g = groups_of({32, 32, 32, 32});
  expect_fused_matches_reference(128, 128, g, g, true, "even groups");
  expect_fused_matches_reference(128, 128, g, g, true, "even groups, lse gradient", /*lse_grad=*/true);
}

TEST(FusedAttention, FrameCausalWithUnevenGroupsMatchesTheReference) {
  const auto g = groups_of({5, 37, 1, 64, 20, 3});  // different token counts per group
  expect_fused_matches_reference(130, 130, g, g, true, "uneven groups");
}

TEST(FusedAttention, QueriesThatAreASliceOfTheClipMatchTheReference) {
  // The queries of groups 2..4 of a 6-group clip over all keys (Lq != Lk), and all
  // queries over the keys of groups 0..3 (the last queries see every key).
  const auto g = groups_of({16, 24, 16, 8, 30, 16});
  const auto later = g.narrow(0, 40, 54), earlier = g.narrow(0, 0, 64);
  expect_fused_matches_reference(54, 110, later, g, true, "query slice");
  expect_fused_matches_reference(110, 64, g, earlier, true, "key slice");
  expect_fused_matches_reference(54, 64, later, earlier, true, "both slices, lse gradient", true);
}

TEST(FusedAttention, RunsAreOnePrefixOfTheKeysPerFrameGroup) {
  const auto g = groups_of({3, 2, 4});
  auto runs = query_runs(g.narrow(0, 3, 6), g, true);  // queries of groups 1, 2
  ASSERT_TRUE(runs.has_value());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].start, 0);
  EXPECT_EQ((*runs)[0].len, 2);
  ASSERT_EQ((*runs)[0].keys.size(), 1u);
  EXPECT_EQ((*runs)[0].keys[0].len, 5);  // groups 0 and 1
  EXPECT_EQ((*runs)[1].keys[0].len, 9);
  // Queries of group 0 over keys of groups 1, 2 see nothing; groups 0 and 1 of keys that
  // hold group 2 only: one run seeing nothing.
  auto none = query_runs(g.narrow(0, 0, 5), g.narrow(0, 5, 4), true);
  ASSERT_EQ(none->size(), 1u);
  EXPECT_TRUE((*none)[0].keys.empty());
  // Groups out of order in more than kMaxSortedPieces pieces: no fused runs.
  auto shuffled = at::arange(20, at::kLong).remainder(2);
  EXPECT_FALSE(query_runs(shuffled, shuffled, true).has_value());
  EXPECT_TRUE(query_runs(shuffled, shuffled, false).has_value());  // full attention needs no order
}

// ---- Memory ----------------------------------------------------------------------------

// Counts the bytes of tensor storage allocated on CPU while installed (the live total and
// its high-water mark). This kernel does not let a process reset its resident high-water
// mark (tests/train/test_memory.cpp skips there), so storage is counted instead: what
// attention allocates, exactly, whatever the allocator keeps around.
class CountingAllocator final : public c10::Allocator {
 public:
  struct Block {
    c10::DataPtr inner;
    size_t bytes;
    CountingAllocator* owner;
  };
  c10::DataPtr allocate(size_t n) override {
    auto inner = base_->allocate(n);
    void* data = inner.get();
    const auto device = inner.device();
    live_ += int64_t(n);
    peak_ = std::max(peak_, live_);
    return {data, new Block{std::move(inner), n, this}, &release, device};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
  // Peak live bytes allocated by f().
  int64_t peak_of(const std::function<void()>& f) {
    base_ = c10::GetCPUAllocator();
    live_ = peak_ = 0;
    c10::SetCPUAllocator(this, kPriority);
    f();
    c10::SetCPUAllocator(base_, kPriority);
    return peak_;
  }

 private:
  static constexpr uint8_t kPriority = 100;
  static void release(void* ctx) {
    auto* b = static_cast<Block*>(ctx);
    b->owner->live_ -= int64_t(b->bytes);
    delete b;
  }
  c10::Allocator* base_ = nullptr;
  int64_t live_ = 0, peak_ = 0;
};

// Peak bytes of tensor storage that forward + backward of frame-causal attention over L
// tokens (B=1, H=4, hd=32, frame-groups of 64 tokens) allocates beyond q, k and v.
int64_t peak_bytes(int64_t l) {
  static CountingAllocator counter;  // outlives every tensor it counted
  auto q = at::randn({1, 4, l, 32}).requires_grad_(), k = at::randn({1, 4, l, 32}).requires_grad_();
  auto v = at::randn({1, 4, l, 32}).requires_grad_();
  const auto g = at::arange(l, at::kLong).div(64, "floor");
  std::vector<QueryRun> runs;
  EXPECT_TRUE(use_fused({q, k, v, g, g, true}, runs)) << "attention() takes the fused runs here";
  return counter.peak_of([&] { attention({q, k, v, g, g, true}).out.sum().backward(); });
}

TEST(FusedAttention, PeakMemoryGrowsLinearlyWithTheLength) {
  constexpr int64_t l = 1024;
  const int64_t small = peak_bytes(l), large = peak_bytes(4 * l);
  std::cout << "[memory] fused frame-causal forward + backward, B=1 H=4 hd=32: peak tensor storage L=" << l << " "
            << small / 1024 << " KiB, L=" << 4 * l << " " << large / 1024 << " KiB\n";
  // Linear: 4x the tokens, at most ~4x the memory (out, lse, the gradients); an [L, L]
  // mask or scores would give ~16x. The explicit scores at 4L: 4 x (4L)^2 x 4 bytes = 256 MiB.
  EXPECT_GT(small, 0);
  EXPECT_LE(large, 5 * small) << "L=" << l << ": " << small << " bytes, 4L: " << large << " bytes";
  EXPECT_LT(large, 4 * (4 * l) * (4 * l) * 4 / 8) << "an eighth of the explicit scores at 4L";
}

// ---- Timing (what chose the CPU default in attention(); --gtest_also_run_disabled_tests) ----

double seconds_per_call(const AttentionInputs& in, int mode) {  // 0 fused, 1 reference, 2 blockwise
  auto once = [&] {
    auto q = in.q.detach().requires_grad_(), k = in.k.detach().requires_grad_(), v = in.v.detach().requires_grad_();
    const AttentionInputs x{q, k, v, in.q_group, in.k_group, in.causal};
    at::Tensor out = mode == 0   ? attention(x).out
                     : mode == 1 ? reference_attention(x).out
                                 : blockwise_attention({q, k, v, x.q_group, x.k_group, x.causal});
    out.backward(in.q);
  };
  once();  // warm-up
  int n = 0;
  const auto t = std::chrono::steady_clock::now();
  double s = 0;
  while (n < 3 || s < 0.5) {
    once();
    ++n;
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  return s / n;
}

TEST(FusedAttention, DISABLED_TimeFusedAgainstExplicitAndBlockwise) {
  for (int64_t b : {2, 8}) {
    for (int64_t hd : {16, 64}) {
      for (int64_t l : {256, 512, 1024, 2048, 4096}) {
        const auto g = at::arange(l, at::kLong).div(64, "floor");
        const AttentionInputs in{
            at::randn({b, 4, l, hd}), at::randn({b, 4, l, hd}), at::randn({b, 4, l, hd}), g, g, true};
        const bool small = b * 4 * l * l <= (int64_t(1) << 26);  // explicit scores up to 256 MiB
        std::cout << "B=" << b << " H=4 L=" << l << " hd=" << hd << " causal fwd+bwd ms: fused "
                  << 1e3 * seconds_per_call(in, 0) << ", explicit "
                  << (small ? std::to_string(1e3 * seconds_per_call(in, 1)) : "-") << ", blockwise "
                  << 1e3 * seconds_per_call(in, 2) << "\n";
      }
    }
  }
}

}  // namespace
}  // namespace reel::test
