// Sequence-parallel attention against the unsplit attention on one rank: the output and
// the q, k, v gradients of every mode (Ulysses, ring, hybrid), full and frame-causal,
// zigzag and contiguous, even and uneven token splits, within 1e-5 (fp32). Run at 2, 3
// and 4 ranks: the sp group is the whole world.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "reel/dist/logging.hpp"
#include "reel/model/attention.hpp"
#include "reel/model/attention_blocks.hpp"
#include "reel/model/rope.hpp"
#include "reel/model/world_model.hpp"
#include "reel/parallel/sequence/sequence_parallel.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

constexpr double kTol = 1e-5;

// 12 heads divide over 2, 3 and 4 ranks; 4 frame-groups of 16 tokens (64 tokens: uneven
// over 3 ranks, and over 6 zigzag chunks).
ModelConfig attention_config(int64_t heads = 12) {
  ModelConfig cfg = model_preset("tiny");
  cfg.heads = heads;
  cfg.dim = heads * 8;
  return cfg;
}

// The model's structure only (no parameter memory): what sequence parallelism reads.
WorldModel structure(const ModelConfig& cfg) { return WorldModel(cfg, ParamInit{at::kCPU, /*deferred=*/true}); }

struct Reference {
  at::Tensor q, k, v, dout, out, dq, dk, dv;  // [B, H, L, hd] each
};

// The unsplit attention with explicit scores (autograd through softmax).
Reference reference(const ModelConfig& cfg, bool causal, int64_t batch = 2) {
  Reference r;
  const int64_t l = cfg.tokens();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto make = [&] { return at::empty({batch, cfg.heads, l, cfg.head_dim()}, at::kFloat).normal_(0, 1, gen); };
  r.q = make(), r.k = make(), r.v = make(), r.dout = make();
  auto q = r.q.clone().requires_grad_(), k = r.k.clone().requires_grad_(), v = r.v.clone().requires_grad_();
  const auto groups = token_groups(cfg, at::arange(l, at::kLong));
  auto scores = at::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(cfg.head_dim()));
  if (causal) scores = scores.masked_fill(groups.unsqueeze(0).gt(groups.unsqueeze(1)), -INFINITY);
  auto out = at::matmul(at::softmax(scores, -1), v);
  out.backward(r.dout);
  r.out = out.detach(), r.dq = q.grad(), r.dk = k.grad(), r.dv = v.grad();
  return r;
}

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  const double scale = want.abs().max().item<double>(), diff = (got - want).abs().max().item<double>();
  EXPECT_LE(diff, kTol * scale) << what << " differs by " << diff << " (largest " << scale << ")";
}

// Runs this rank's share through the sequence-parallel attention and compares it with the
// same tokens of the reference.
void expect_matches_one_rank(SpMode mode, int ulysses, SpBalance balance, const ModelConfig& cfg = attention_config(),
                             std::vector<bool> masks = {false, true}) {
  const int sp = world().size();
  SequenceConfig sc;
  sc.mode = mode;
  sc.ulysses = ulysses;
  sc.balance = balance;
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{1, sp, 0}, sc.ulysses_degree(sp));
  SequenceParallel seq(*structure(cfg), mesh, sc);
  ASSERT_TRUE(seq.active());
  for (bool causal : masks) {
    const auto ref = reference(cfg, causal, cfg.tokens() > 1024 ? 1 : 2);
    const auto& idx = seq.index();
    auto mine = [&](const at::Tensor& t) { return t.index_select(2, idx); };
    auto q = mine(ref.q).requires_grad_(), k = mine(ref.k).requires_grad_(), v = mine(ref.v).requires_grad_();
    const auto groups = token_groups(cfg, idx);
    auto out = seq({q, k, v, groups, groups, causal}).out;
    out.backward(mine(ref.dout));
    const std::string at = cat(mode, " ", balance, causal ? " causal" : " full", " rank ", world().rank());
    expect_close(out.detach(), mine(ref.out), at + " output");
    expect_close(q.grad(), mine(ref.dq), at + " dq");
    expect_close(k.grad(), mine(ref.dk), at + " dk");
    expect_close(v.grad(), mine(ref.dv), at + " dv");
  }
  // What the rank sent equals the layout's analytic volume (uneven splits included).
  const int64_t batch = cfg.tokens() > 1024 ? 1 : 2;
  EXPECT_EQ(seq.take_stats().bytes_sent, int64_t(masks.size()) * seq.expected_bytes_per_block(batch, 4))
      << mode << " rank " << world().rank();
}

TEST(SequenceParallel, UlyssesMatchesOneRank) {
  if (world().size() == 1) GTEST_SKIP() << "needs 2 or more ranks";
  expect_matches_one_rank(SpMode::kUlysses, 0, SpBalance::kZigzag);  // (the balance applies to rings only)
}

TEST(SequenceParallel, RingMatchesOneRank) {
  if (world().size() == 1) GTEST_SKIP() << "needs 2 or more ranks";
  expect_matches_one_rank(SpMode::kRing, 0, SpBalance::kZigzag);
  expect_matches_one_rank(SpMode::kRing, 0, SpBalance::kContiguous);
}

TEST(SequenceParallel, HybridMatchesOneRank) {
  if (world().size() != 4) GTEST_SKIP() << "hybrid needs ulysses x ring with both > 1: 4 ranks here";
  expect_matches_one_rank(SpMode::kHybrid, 2, SpBalance::kZigzag);
  expect_matches_one_rank(SpMode::kHybrid, 2, SpBalance::kContiguous);
}

TEST(SequenceParallel, LongClipsTakeTheirKeysInChunks) {
  // 3,072 tokens: each rank's blocks exceed kKeyChunk keys, so the ring's block maths and
  // Ulysses' local attention both go through key chunks. One head per rank.
  if (world().size() == 1) GTEST_SKIP() << "needs 2 or more ranks";
  ModelConfig cfg = attention_config(world().size());
  cfg.frames = 24;
  cfg.height = cfg.width = 64;
  ASSERT_GT(cfg.tokens() / (2 * world().size()), kKeyChunk / 2);
  expect_matches_one_rank(SpMode::kRing, 0, SpBalance::kZigzag, cfg, {true});
  expect_matches_one_rank(SpMode::kUlysses, 0, SpBalance::kZigzag, cfg, {true});
}

TEST(SequenceParallel, LayoutCoversEveryTokenOnceAndBalancesCausalWork) {
  for (int ring : {1, 2, 3, 4}) {
    for (int ulysses : {1, 2}) {
      for (SpBalance balance : {SpBalance::kZigzag, SpBalance::kContiguous}) {
        auto layout = SequenceLayout::create(61, ring, ulysses, balance);  // 61: nothing divides
        std::vector<at::Tensor> all;
        for (int r = 0; r < layout.size(); ++r) all.push_back(layout.index(r));
        EXPECT_TRUE(std::get<0>(at::cat(all).sort()).equal(at::arange(61, at::kLong)))
            << ring << "x" << ulysses << " " << balance;
      }
    }
  }
  // Causal work of ring rank i ~ sum over its query positions of (position + 1).
  auto imbalance = [](SpBalance balance) {
    auto layout = SequenceLayout::create(64, 4, 1, balance);
    std::vector<double> work;
    for (int r = 0; r < 4; ++r) work.push_back((layout.index(r) + 1).sum().item<double>());
    return *std::max_element(work.begin(), work.end()) / (std::accumulate(work.begin(), work.end(), 0.0) / 4);
  };
  EXPECT_LT(imbalance(SpBalance::kZigzag), 1.01);
  EXPECT_GT(imbalance(SpBalance::kContiguous), 1.6);
  EXPECT_THROW(SequenceLayout::create(5, 3, 1, SpBalance::kZigzag), std::invalid_argument);  // 6 chunks of 5 tokens
}

TEST(SequenceParallel, BlockMergeEqualsWholeAttention) {
  // Two key blocks merged through their log-sum-exp equal one block over all keys, also
  // for rows that see nothing of one block.
  const auto cfg = attention_config(2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto q = at::empty({1, 2, 64, 8}, at::kDouble).normal_(0, 1, gen);
  auto k = at::empty_like(q).normal_(0, 1, gen), v = at::empty_like(q).normal_(0, 1, gen);
  const auto groups = token_groups(cfg, at::arange(64, at::kLong));
  const auto whole = block_forward({q, k, v, groups, groups, true});
  PartialAttention merged;
  for (int64_t start : {32, 0}) {  // the later block first: early rows see none of it
    auto part = [&](const at::Tensor& t) { return t.narrow(2, start, 32); };
    merge_partial(merged, block_forward({q, part(k), part(v), groups, groups.narrow(0, start, 32), true}));
  }
  EXPECT_TRUE(at::allclose(merged.out, whole.out, 1e-12, 1e-12));
  EXPECT_TRUE(at::allclose(merged.lse, whole.lse, 1e-12, 1e-12));
}

// One rank's queries against key blocks taken one at a time (what a ring rank does):
// block_forward merged over the blocks, then block_backward of every block given the final
// out and lse, against the explicit attention over all keys (fp32, 1e-5). `cuts`: the key
// blocks [cuts[i], cuts[i + 1]). `fused`: whether the blocks take the fused runs.
void expect_blocks_match_reference(const at::Tensor& q_group, const at::Tensor& k_group,
                                   const std::vector<int64_t>& cuts, bool fused, const std::string& what) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto make = [&](const at::Tensor& g) { return at::empty({2, 3, g.size(0), 8}, at::kFloat).normal_(0, 1, gen); };
  const auto q = make(q_group), k = make(k_group), v = make(k_group), dout = make(q_group);
  auto rq = q.clone().requires_grad_(), rk = k.clone().requires_grad_(), rv = v.clone().requires_grad_();
  const auto ref = reference_attention({rq, rk, rv, q_group, k_group, true});
  ref.out.backward(dout);
  auto block = [&](size_t i) {
    const int64_t a = cuts[i], n = cuts[i + 1] - cuts[i];
    return AttentionBlock{q, k.narrow(2, a, n), v.narrow(2, a, n), q_group, k_group.narrow(0, a, n), true};
  };
  PartialAttention merged;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    std::vector<QueryRun> runs;
    EXPECT_EQ(use_fused(block(i), runs), fused) << what << " block " << i;
    if (!block_visible(block(i).q_group, block(i).k_group, true)) continue;
    merge_partial(merged, block_forward(block(i)));
    if (fused) {  // the work is the visible query x key pairs
      const auto visible = block(i).k_group.unsqueeze(0).le(q_group.unsqueeze(1)).sum().item<int64_t>();
      EXPECT_EQ(block_work(block(i)), visible) << what << " block " << i;
    }
  }
  expect_close(merged.out, ref.out.detach(), what + " output");
  expect_close(merged.lse, ref.lse.detach(), what + " lse");
  const auto out = merged.out.to(q.scalar_type());
  auto dq = at::zeros_like(q);
  std::vector<at::Tensor> dk, dv;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    auto g = block_backward(block(i), dout, out, merged.lse);
    dq += g.dq;
    dk.push_back(g.dk);
    dv.push_back(g.dv);
  }
  expect_close(dq, rq.grad(), what + " dq");
  expect_close(at::cat(dk, 2), rk.grad(), what + " dk");
  expect_close(at::cat(dv, 2), rv.grad(), what + " dv");
}

at::Tensor groups_of(const std::vector<int64_t>& sizes) {
  std::vector<at::Tensor> parts;
  for (size_t i = 0; i < sizes.size(); ++i) parts.push_back(at::full({sizes[i]}, int64_t(i), at::kLong));
  return at::cat(parts);
}

TEST(SequenceParallel, BlocksOfKeysMergeAndDifferentiateLikeWholeAttention) {
  // Uneven frame-groups; key blocks cut inside groups; early queries see nothing of the
  // later blocks (their rows: lse -inf, zero output, no gradient).
  const auto g = groups_of({7, 20, 3, 16, 11, 9});  // 66 tokens
  expect_blocks_match_reference(g, g, {0, 25, 40, 66}, true, "contiguous blocks");
  // A zigzag ring share (chunks 0 and 3 of 4: two sorted pieces, still in order) against
  // the whole clip in blocks, the later block first.
  const auto share = at::cat({g.narrow(0, 0, 16), g.narrow(0, 50, 16)});
  expect_blocks_match_reference(share, at::cat({g.narrow(0, 33, 33), g.narrow(0, 0, 33)}), {0, 33, 66}, true,
                                "zigzag share");
  // Hybrid ring shares: the zigzag pieces of two Ulysses ranks one after the other (not
  // in order, but few sorted pieces: still fused, merged through the lse).
  auto hybrid = at::cat({g.narrow(0, 0, 8), g.narrow(0, 58, 8), g.narrow(0, 8, 8), g.narrow(0, 50, 8)});
  expect_blocks_match_reference(hybrid, at::cat({hybrid, g.narrow(0, 16, 34)}), {0, 32, 66}, true, "hybrid share");
  // Shuffled groups (more sorted pieces than kMaxSortedPieces): the tiles, same results.
  auto shuffled = g.index_select(0, at::randperm(66, at::make_generator<at::CPUGeneratorImpl>(2)));
  expect_blocks_match_reference(shuffled, shuffled, {0, 30, 66}, false, "shuffled");
}

TEST(SequenceParallel, ShapesThatCannotSplitAreRefusedWithTheNumbers) {
  const int sp = world().size();
  if (sp == 1) GTEST_SKIP() << "needs 2 or more ranks";
  SequenceConfig ulysses;
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{1, sp, 0}, sp);
  const auto heads = attention_config(sp + 1);  // sp + 1 heads never divide over sp ranks
  try {
    SequenceParallel seq(*structure(heads), mesh, ulysses);
    ADD_FAILURE() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(sp + 1) +
                                         " attention heads do not divide over Ulysses degree " + std::to_string(sp)),
              std::string::npos)
        << e.what();
  }
  SequenceConfig hybrid;
  hybrid.mode = SpMode::kHybrid;
  hybrid.ulysses = sp;  // not strictly inside (1, sp)
  EXPECT_THROW(hybrid.ulysses_degree(sp), std::invalid_argument);
  ModelConfig few = attention_config();
  few.frames = 2;  // one frame-group of 16 tokens
  few.context_groups = 0;
  few.height = few.width = 4;  // 1 token per group
  EXPECT_THROW(SequenceParallel(*structure(few), mesh, ulysses), std::invalid_argument);
  // The mesh was built for Ulysses; asking it for a ring is a mismatch, named.
  SequenceConfig ring;
  ring.mode = SpMode::kRing;
  EXPECT_THROW(SequenceParallel(*structure(attention_config()), mesh, ring), std::invalid_argument);
}

}  // namespace
}  // namespace reel::test
