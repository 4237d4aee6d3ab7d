// The model: shapes, RoPE against its direct formula, frame-causal isolation, gradients
// against finite differences, deterministic initialisation, the FLOP count.
#include <gtest/gtest.h>

#include <cmath>

#include "reel/model/attention_blocks.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/rope.hpp"
#include "reel/model/world_model.hpp"
#include "tests/support/gradcheck.hpp"

namespace reel::test {
namespace {

ModelConfig small_test_config() {
  ModelConfig cfg = model_preset("tiny");
  cfg.dim = 48;
  cfg.heads = 2;
  cfg.depth = 2;
  return cfg;
}

TEST(Model, ShapesThroughTheModelAndPatchRoundTrip) {
  for (MlpKind mlp : {MlpKind::kGelu, MlpKind::kSwiglu}) {
    ModelConfig cfg = small_test_config();
    cfg.mlp = mlp;
    WorldModel model(cfg);
    init_model(*model, 1);
    auto video = at::rand({2, cfg.frames, cfg.channels, cfg.height, cfg.width}) * 2 - 1;
    auto tokens = patchify(video, cfg);
    ASSERT_EQ(tokens.sizes(), (at::IntArrayRef{2, cfg.tokens(), cfg.patch_dim()}));
    EXPECT_TRUE(unpatchify(tokens, cfg).equal(video));
    auto out = model->forward(tokens, at::rand({2, cfg.groups()}), at::randn({2, cfg.frames, cfg.action_dim}));
    EXPECT_EQ(out.sizes(), tokens.sizes());
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    // A token slice (as sequence parallelism feeds it) has the slice's shape.
    auto part = model->forward(tokens.narrow(1, 16, 32), at::rand({2, cfg.groups()}),
                               at::randn({2, cfg.frames, cfg.action_dim}), 16);
    EXPECT_EQ(part.sizes(), (at::IntArrayRef{2, 32, cfg.patch_dim()}));
  }
}

TEST(Model, RopeMatchesTheDirectFormula) {
  const ModelConfig cfg = small_test_config();
  const int64_t hd = 24, l = cfg.tokens();
  auto pos = token_positions(cfg, at::arange(l, at::kLong));
  auto tables = rope_tables(pos, hd, cfg.rope_theta);
  auto x = at::randn({1, 1, l, hd}, at::kDouble);
  auto got = apply_rope(x, tables);
  const auto bands = rope_bands(hd);
  auto xa = x.accessor<double, 4>();
  auto ga = got.accessor<double, 4>();
  double worst = 0;
  for (int64_t tok = 0; tok < l; ++tok) {
    int64_t pair = 0;
    for (int axis = 0; axis < 3; ++axis) {
      for (int64_t j = 0; j < bands[axis]; ++j, ++pair) {
        const double angle = pos[tok][axis].item<int64_t>() * std::pow(cfg.rope_theta, -double(j) / bands[axis]);
        const double a = xa[0][0][tok][2 * pair], b = xa[0][0][tok][2 * pair + 1];
        worst = std::max(worst, std::abs(ga[0][0][tok][2 * pair] - (a * std::cos(angle) - b * std::sin(angle))));
        worst = std::max(worst, std::abs(ga[0][0][tok][2 * pair + 1] - (a * std::sin(angle) + b * std::cos(angle))));
      }
    }
  }
  EXPECT_LT(worst, 1e-6);  // the tables are float32
  // Positions: token (group, row, col) in group-major order.
  EXPECT_EQ(pos[cfg.tokens_per_group() + 5][0].item<int64_t>(), 1);
  EXPECT_EQ(pos[5][1].item<int64_t>(), 1);
  EXPECT_EQ(pos[5][2].item<int64_t>(), 1);
}

TEST(Model, FrameCausalOutputsOfEarlierGroupsIgnoreLaterFrames) {
  const ModelConfig cfg = small_test_config();
  WorldModel model(cfg);
  init_model(*model, 2);
  // Non-zero adaLN so that every path carries signal.
  for (auto& p : model->parameters()) p.data().add_(at::randn(p.sizes()) * 0.05);
  auto tokens = at::randn({2, cfg.tokens(), cfg.patch_dim()});
  auto t = at::rand({2, cfg.groups()});
  auto actions = at::randn({2, cfg.frames, cfg.action_dim});
  auto before = model->forward(tokens, t, actions);
  const int64_t last = cfg.groups() - 1, lg = cfg.tokens_per_group();
  auto tokens2 = tokens.clone(), t2 = t.clone(), actions2 = actions.clone();
  tokens2.narrow(1, last * lg, lg).normal_();
  t2.select(1, last).fill_(0.123);
  actions2.narrow(1, last * cfg.patch_t, cfg.patch_t).normal_();
  auto after = model->forward(tokens2, t2, actions2);
  EXPECT_TRUE(before.narrow(1, 0, last * lg).equal(after.narrow(1, 0, last * lg)));
  EXPECT_FALSE(before.narrow(1, last * lg, lg).equal(after.narrow(1, last * lg, lg)));
}

TEST(Model, AttentionAndRopeGradientsMatchFiniteDifferences) {
  const ModelConfig cfg = small_test_config();
  const int64_t l = 32, hd = 12;
  auto groups = token_groups(cfg, at::arange(l, at::kLong));
  auto k = at::randn({1, 2, l, hd}, at::kDouble), v = at::randn({1, 2, l, hd}, at::kDouble);
  auto w = at::randn({1, 2, l, hd}, at::kDouble), wl = at::randn({1, 2, l}, at::kDouble);
  for (bool causal : {false, true}) {
    expect_gradient_matches(
        [&](const at::Tensor& q) {
          auto r = attention({q, k, v, groups, groups, causal});
          return (r.out * w).sum() + (r.lse.to(at::kDouble) * wl).sum();
        },
        at::randn({1, 2, l, hd}, at::kDouble));
  }
  auto tables = rope_tables(token_positions(cfg, at::arange(l, at::kLong)), hd, cfg.rope_theta);
  RopeTables dt{tables.cos.to(at::kDouble), tables.sin.to(at::kDouble)};
  expect_gradient_matches([&](const at::Tensor& x) { return (apply_rope(x, dt) * w).sum(); },
                          at::randn({1, 2, l, hd}, at::kDouble));
}

TEST(Model, AttentionLogSumExpIsTheRowNormaliser) {
  const ModelConfig cfg = small_test_config();
  const int64_t l = 32, hd = 12;
  auto q = at::randn({1, 2, l, hd}), k = at::randn({1, 2, l, hd}), v = at::randn({1, 2, l, hd});
  auto groups = token_groups(cfg, at::arange(l, at::kLong));
  auto full = attention({q, k, v, groups, groups, true});
  // Two key halves merged through their lse equal attention over all keys (ring attention).
  auto a = attention({q, k.narrow(2, 0, 16), v.narrow(2, 0, 16), groups, groups.narrow(0, 0, 16), true});
  auto b = attention({q, k.narrow(2, 16, 16), v.narrow(2, 16, 16), groups, groups.narrow(0, 16, 16), true});
  auto lse = at::logaddexp(a.lse, b.lse);
  auto merged = a.out * at::exp(a.lse - lse).nan_to_num(0).unsqueeze(-1) +
                b.out.nan_to_num(0) * at::exp(b.lse - lse).nan_to_num(0).unsqueeze(-1);
  EXPECT_TRUE(at::allclose(lse, full.lse, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(merged, full.out, 1e-5, 1e-5));
}

TEST(Model, LongSequencesUseBlockwiseAttentionWithTheSameResultAndGradients) {
  // 1,100 keys: three key chunks (the last one short), against the explicit reference.
  ModelConfig cfg = small_test_config();
  const int64_t l = 1100, hd = 8;
  ASSERT_GT(l, 2 * kKeyChunk);
  auto groups = at::arange(l, at::kLong).div(100, "floor");  // 11 frame-groups of 100
  for (bool causal : {false, true}) {
    auto q = at::randn({1, 2, l, hd}, at::kDouble), k = at::randn_like(q), v = at::randn_like(q), g = at::randn_like(q);
    std::vector<at::Tensor> got, want;
    for (bool blockwise : {true, false}) {
      auto qq = q.clone().requires_grad_(), kk = k.clone().requires_grad_(), vv = v.clone().requires_grad_();
      at::Tensor out;
      if (blockwise) {
        out = blockwise_attention({qq, kk, vv, groups, groups, causal});  // (attention() takes the fused runs)
      } else {
        auto scores = at::matmul(qq, kk.transpose(-2, -1)) / std::sqrt(double(hd));
        if (causal) scores = scores.masked_fill(groups.unsqueeze(0).gt(groups.unsqueeze(1)), -INFINITY);
        out = at::matmul(at::softmax(scores, -1), vv);
      }
      out.backward(g);
      (blockwise ? got : want) = {out.detach(), qq.grad(), kk.grad(), vv.grad()};
    }
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(at::allclose(got[i], want[i], 1e-10, 1e-10))
          << (causal ? "causal " : "full ") << "tensor " << i << " max diff "
          << (got[i] - want[i]).abs().max().item<double>();
    }
  }
}

TEST(Model, InitialisationDependsOnlyOnSeedAndName) {
  const ModelConfig cfg = small_test_config();
  WorldModel a(cfg), b(cfg);
  init_model(*a, 42);
  init_model(*b, 42);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(p.value().equal(pb[p.key()])) << p.key();
  // One parameter alone (as a shard-by-shard initialisation would do) gets the same values.
  auto alone = at::empty(pa["block1.qkv.weight"].sizes());
  init_parameter("block1.qkv.weight", alone, 42);
  EXPECT_TRUE(alone.equal(pa["block1.qkv.weight"]));
  init_model(*b, 43);
  EXPECT_FALSE(pb["block1.qkv.weight"].equal(pa["block1.qkv.weight"]));
  EXPECT_TRUE(pa["block0.ada.weight"].eq(0).all().item<bool>()) << "adaLN-Zero";
}

TEST(Model, FlopCountMatchesTheParameterShapes) {
  for (MlpKind mlp : {MlpKind::kGelu, MlpKind::kSwiglu}) {
    ModelConfig cfg = small_test_config();
    cfg.mlp = mlp;
    WorldModel model(cfg);
    const int64_t batch = 3;
    const double tokens = double(cfg.tokens()) * batch, groups = double(cfg.groups()) * batch;
    double flops = 0;
    for (const auto& p : model->named_parameters()) {
      if (p.value().dim() != 2) continue;
      const auto& name = p.key();
      // Per-group linears (time, action, adaLN) run once per frame-group, the rest per token.
      const bool per_group =
          name.find("time_") == 0 || name.find("action") == 0 || name.find("ada") != std::string::npos;
      flops += 2.0 * (per_group ? groups : tokens) * p.value().size(0) * p.value().size(1);
    }
    flops += cfg.depth * 4.0 * batch * cfg.tokens() * cfg.tokens() * cfg.dim;  // q.k and p.v
    EXPECT_DOUBLE_EQ(forward_flops(cfg, batch), flops) << mlp;
    EXPECT_DOUBLE_EQ(training_step_flops(cfg, batch), 3 * flops);
  }
}

TEST(Model, BadConfigurationsAreRejected) {
  EXPECT_THROW(model_preset("huge"), std::invalid_argument);
  ModelConfig cfg = model_preset("tiny");
  cfg.height = 30;
  EXPECT_THROW(cfg.validate(), std::invalid_argument);
  cfg = model_preset("tiny");
  cfg.context_groups = cfg.groups();
  EXPECT_THROW(cfg.validate(), std::invalid_argument);
  for (const char* name : {"small", "1b", "7b"}) EXPECT_NO_THROW(model_preset(name).validate()) << name;
}

}  // namespace
}  // namespace reel::test
