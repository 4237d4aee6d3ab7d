// The model interface (model/model.hpp) with a model unlike reel's own: no conditioning
// (cond undefined), no rotary tables, causal groups of two tokens. Under parallelize()
// — ring sequence parallelism over every rank, activation checkpointing of every block,
// FSDP — its loss and every unit's reduced gradient equal one plain rank's within 1e-5,
// and its blocks see exactly the undefined inputs they were given (activation
// checkpointing carries them through its autograd function as placeholders).
#include <gtest/gtest.h>

#include "reel/model/layers.hpp"
#include "reel/model/model.hpp"
#include "reel/parallel/parallelize.hpp"
#include "tests/support/test_env.hpp"
#include "tests/train/parity_support.hpp"

namespace reel::test {
namespace {

constexpr int64_t kDim = 16, kTokens = 24, kDepth = 2;

class PairBlockImpl : public torch::nn::Module {
 public:
  explicit PairBlockImpl(const ParamInit& init) {
    qkv_ = register_module("qkv", Linear(kDim, 3 * kDim, init));
    fc_ = register_module("fc", Linear(kDim, kDim, init));
  }
  at::Tensor forward(const at::Tensor& x, const TokenContext& ctx) {
    const int64_t b = x.size(0), lc = x.size(1);
    auto qkv = qkv_->forward(at::layer_norm(x, {kDim})).view({b, lc, 3, 1, kDim}).permute({2, 0, 3, 1, 4});
    auto att = attention_fn({qkv[0], qkv[1], qkv[2], ctx.host_groups, ctx.host_groups, true}).out;
    auto y = x + att.permute({0, 2, 1, 3}).reshape({b, lc, kDim});
    return y + fc_->forward(at::layer_norm(y, {kDim}), /*gelu=*/true);
  }
  AttentionFn attention_fn = attention;

 private:
  Linear qkv_{nullptr}, fc_{nullptr};
};
TORCH_MODULE(PairBlock);

class PairModel : public Model {
 public:
  explicit PairModel(const ParamInit& init) {
    in_ = register_module("in", Linear(2, kDim, init));
    for (int64_t i = 0; i < kDepth; ++i) blocks_.push_back(register_block(PairBlock(init)));
    if (!init.deferred) init_model(*this, init.seed);
  }
  // x [B, Lc, 2] at positions index [Lc] -> [B, Lc, D]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& index) {
    const auto ctx = context(index, x.device());
    auto h = in_->forward(x);
    for (size_t i = 0; i < blocks_.size(); ++i) h = run_block(i, h, at::Tensor(), ctx);
    return h;
  }
  at::Tensor forward_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) override {
    // What this model passes, whatever wraps the block (an undefined tensor must not come
    // back as an empty placeholder).
    TORCH_CHECK(!cond.defined() && !ctx.rope_cos.defined() && !ctx.rope_sin.defined(),
                "a block of a model without conditioning or rotary tables was given some");
    TORCH_CHECK(ctx.index.defined() && ctx.host_groups.numel() == x.size(1), "the block lost its token context");
    return blocks_.at(i)->forward(x, ctx);
  }
  SequenceShape sequence_shape() const override { return {kTokens, kDim, 1}; }
  at::Tensor token_groups(const at::Tensor& index) const override { return index.div(2, "floor"); }
  void set_attention(const AttentionFn& fn) override {
    for (auto& b : blocks_) b->attention_fn = fn;
  }
  TokenContext context(const at::Tensor& index, const at::Device& device) const override {
    const auto pos = index.to(at::kCPU, at::kLong);
    return {pos.to(device), token_groups(pos).to(device), at::Tensor(), at::Tensor(), token_groups(pos)};
  }
  void init_parameter(const std::string& name, at::Tensor& p, uint64_t seed) const override {
    init_normal(name, p, seed, 0.2);
  }

 private:
  Linear in_{nullptr};
  std::vector<PairBlock> blocks_;
};

TEST(ModelInterface, AModelWithoutConditioningOrRotaryTablesShardsCheckpointsAndSplits) {
  const int n = world().size();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto x = at::randn({2, kTokens, 2}, gen), all = at::arange(kTokens, at::kLong);
  PairModel plain(ParamInit{at::kCPU, false, 5});
  const auto want = plain.forward(x, all).pow(2).sum();
  want.backward();
  std::map<std::string, at::Tensor> grads;
  for (const auto& p : plain.named_parameters()) grads[p.key()] = p.value().grad();

  PairModel model(ParamInit{at::kCPU, /*deferred=*/true, 5});
  ParallelConfig pc;
  pc.sequence.mode = SpMode::kRing;
  pc.activation_checkpoint.mode = CheckpointMode::kFull;
  const auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{1, n, 0}, 1);
  auto par = parallelize(model, mesh, pc, 5);
  const auto& index = par.sequence->index();  // this rank's positions
  auto mine = par.fsdp->forward([&] { return model.forward(x.index_select(1, index), index); }).pow(2).sum();
  mine.backward();
  par.fsdp->finish_backward();
  auto total = mine.detach().clone();
  world().all_reduce(total);
  EXPECT_NEAR(total.item<double>(), want.item<double>(), 1e-5 * want.item<double>());
  for (auto& unit : par.fsdp->units()) {
    const auto ref = reference_slice(unit->layout(), grads, mesh.shard_group().rank());
    const double diff = (unit->grad_shard() - ref).abs().max().item<double>();
    EXPECT_LE(diff, 1e-5 * ref.abs().max().item<double>() + 1e-12) << unit->layout().name;
  }
}

}  // namespace
}  // namespace reel::test
