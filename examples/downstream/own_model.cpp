// A program of another project that trains a model of its own with reel, without
// changing reel: a small causal transformer that predicts the next value of noisy sine
// waves. What it writes is what CONTRIBUTING.md ("Adding a model") asks of a model:
//   WaveModel  implements reel::Model (model/model.hpp): its blocks, how one runs, its
//              sequence (each value its own causal group), its attention, its context
//              and its initialisation. FSDP, sequence parallelism and activation
//              checkpointing need nothing else.
//   WaveSpec   implements reel::ModelSpec (train/model_spec.hpp): presets, its data (no
//              file: samples computed from their index), its loss (a sum over this
//              rank's targets), its FLOPs. The Trainer needs nothing else.
// It registers the family, then trains with reel's Trainer on 2 ranks, FSDP over both
// and ring attention splitting every sequence between them.
//
//   mpirun -np 2 ./own_model        (prints "OK: ..." on rank 0; exit 1 on any rank's failure)
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include "reel/dist/agreement.hpp"
#include "reel/dist/runtime.hpp"
#include "reel/model/layers.hpp"
#include "reel/model/model.hpp"
#include "reel/model/seed.hpp"
#include "reel/train/trainer.hpp"

namespace wave {

// One pre-norm block: causal attention through the installed attention function, an MLP.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, const reel::ParamInit& init) : dim_(dim), heads_(heads) {
    qkv_ = register_module("qkv", reel::Linear(dim, 3 * dim, init));
    proj_ = register_module("proj", reel::Linear(dim, dim, init));
    fc1_ = register_module("fc1", reel::Linear(dim, 4 * dim, init));
    fc2_ = register_module("fc2", reel::Linear(4 * dim, dim, init));
  }
  // x [B, Lc, D] -> [B, Lc, D]
  at::Tensor forward(const at::Tensor& x, const reel::TokenContext& ctx) {
    const int64_t b = x.size(0), lc = x.size(1), hd = dim_ / heads_;
    auto qkv = qkv_->forward(at::layer_norm(x, {dim_})).view({b, lc, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
    auto att = attention_fn({qkv[0], qkv[1], qkv[2], ctx.host_groups, ctx.host_groups, /*causal=*/true}).out;
    auto y = x + proj_->forward(att.permute({0, 2, 1, 3}).reshape({b, lc, dim_}));
    return y + fc2_->forward(fc1_->forward(at::layer_norm(y, {dim_}), /*gelu=*/true));
  }
  reel::AttentionFn attention_fn = reel::attention;

 private:
  int64_t dim_, heads_;
  reel::Linear qkv_{nullptr}, proj_{nullptr}, fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Block);

class WaveModel : public reel::Model {
 public:
  WaveModel(const reel::ModelConfig& cfg, const reel::ParamInit& init) : cfg_(cfg) {
    in_ = register_module("in", reel::Linear(1, cfg.dim, init));
    for (int64_t i = 0; i < cfg.depth; ++i) blocks_.push_back(register_block(Block(cfg.dim, cfg.heads, init)));
    out_ = register_module("out", reel::Linear(cfg.dim, 1, init));
    if (!init.deferred) reel::init_model(*this, init.seed);
  }
  // values [B, Lc] at positions index [Lc] -> the predicted next value of each [B, Lc]
  at::Tensor forward(const at::Tensor& values, const at::Tensor& index) {
    const auto ctx = context(index, values.device());
    auto x = in_->forward(values.unsqueeze(-1));
    for (size_t i = 0; i < blocks_.size(); ++i) x = run_block(i, x, at::Tensor(), ctx);  // through run_block: FSDP
    return out_->forward(at::layer_norm(x, {cfg_.dim})).squeeze(-1);
  }

  at::Tensor forward_block(size_t i, const at::Tensor& x, const at::Tensor&, const reel::TokenContext& ctx) override {
    return blocks_.at(i)->forward(x, ctx);
  }
  reel::SequenceShape sequence_shape() const override { return {cfg_.seq_len, cfg_.dim, cfg_.heads, true}; }
  at::Tensor token_groups(const at::Tensor& index) const override { return index.to(at::kLong); }
  void set_attention(const reel::AttentionFn& fn) override {
    for (auto& b : blocks_) b->attention_fn = fn;
  }
  reel::TokenContext context(const at::Tensor& index, const at::Device& device) const override {
    const auto pos = index.to(at::kCPU, at::kLong);  // no rotary tables: positions come from the values' phase
    return {pos.to(device), pos.to(device), at::Tensor(), at::Tensor(), pos};
  }
  void init_parameter(const std::string& name, at::Tensor& p, uint64_t seed) const override {
    at::NoGradGuard no_grad;
    if (name.find("bias") != std::string::npos) {
      p.zero_();
      return;
    }
    reel::init_normal(name, p, seed, 0.05);
  }

 private:
  reel::ModelConfig cfg_;
  reel::Linear in_{nullptr}, out_{nullptr};
  std::vector<Block> blocks_;
};

// The data: sample i is seq_len + 1 values of a sine wave whose frequency and phase are a
// function of i alone (any rank computes any sample), plus a little noise.
class WaveReader : public reel::SampleReader {
 public:
  WaveReader(int64_t samples, int64_t length) : samples_(samples), length_(length) {}
  int64_t sample_count() const override { return samples_; }
  reel::Samples read_samples(const std::vector<int64_t>& indices) override {
    auto out = at::empty({int64_t(indices.size()), length_ + 1});
    for (size_t n = 0; n < indices.size(); ++n) out[n] = sample(indices[n]);
    return {{"values", out}};
  }
  at::Tensor sample(int64_t i) const {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(reel::mix_seed(11, uint64_t(i)));
    const double freq = 0.1 + 0.2 * at::rand({1}, gen).item<double>(), phase = 6.28 * at::rand({1}, gen).item<double>();
    return at::sin(at::arange(length_ + 1, at::kFloat) * freq + phase) + 0.05 * at::randn({length_ + 1}, gen);
  }

 private:
  int64_t samples_, length_;
};

class WaveSpec : public reel::ModelSpec {
 public:
  std::string family() const override { return "wave"; }
  std::vector<std::string> presets() const override { return {"tiny"}; }
  reel::ModelConfig preset(const std::string& name) const override {
    if (name != "tiny") throw std::invalid_argument("wave: unknown preset '" + name + "' (tiny)");
    reel::ModelConfig c;
    c.family = "wave", c.preset = name, c.dim = 32, c.depth = 2, c.heads = 2, c.seq_len = 64;
    return c;
  }
  std::shared_ptr<reel::Model> build(const reel::ModelConfig& cfg, const reel::ParamInit& init) const override {
    return std::make_shared<WaveModel>(cfg, init);
  }
  // data.path names no file: "wave:N" asks for N samples.
  std::unique_ptr<reel::SampleReader> open_data(const std::string& path) const override {
    return std::make_unique<WaveReader>(std::stoll(path.substr(path.find(':') + 1)), 64);
  }
  reel::DataFileInfo check_data(const reel::ModelConfig&, const std::string& path) const override {
    if (path.rfind("wave:", 0) != 0) throw std::invalid_argument(path + ": wave data is named wave:SAMPLES");
    return {open_data(path)->sample_count(), true};
  }
  std::string data_hint(const reel::ModelConfig&, const std::string&, int64_t samples) const override {
    return "use --data.path wave:" + std::to_string(samples);
  }
  std::string content_sha256(const std::string& path, bool* computed) const override {
    *computed = false;
    return "computed from its name: " + path;
  }
  // Squared error of the next value over this rank's positions.
  at::Tensor loss_sum(const reel::ModelConfig&, reel::Model& model, const reel::Batch& b,
                      const reel::LossContext& ctx) const override {
    const auto& values = b.at("values");  // [b, L + 1]
    const auto inputs = values.index_select(1, ctx.index).to(ctx.device);
    const auto targets = values.index_select(1, ctx.index + 1).to(ctx.device);
    auto pred = ctx.forward([&] { return dynamic_cast<WaveModel&>(model).forward(inputs, ctx.index); });
    return (pred - targets).pow(2).sum();
  }
  int64_t targets_per_sample(const reel::ModelConfig& cfg) const override { return cfg.seq_len; }
  double block_forward_flops(const reel::ModelConfig& cfg, int64_t batch) const override {
    const double l = double(cfg.seq_len) * batch, d = cfg.dim;
    return 2 * l * d * 3 * d + 2 * l * d * d + 2 * 2 * l * d * 4 * d + 4.0 * batch * cfg.seq_len * cfg.seq_len * d;
  }
  double forward_flops(const reel::ModelConfig& cfg, int64_t batch) const override {
    return cfg.depth * block_forward_flops(cfg, batch);
  }
};

int run() {
  reel::RuntimeConfig rc;
  rc.backend = reel::BackendKind::kMpi;  // CPU ranks: the same result on any machine, GPU or not
  reel::Runtime runtime(rc);
  reel::register_model_spec(std::make_shared<WaveSpec>());
  reel::TrainConfig c;
  c.model_choice.family = "wave";
  c.data.path = "wave:512";
  c.data.global_batch = 16;
  c.data.eval_clips = 16;
  c.mesh.sp = runtime.world()->size();             // every sequence split over the ranks ...
  c.parallel.sequence.mode = reel::SpMode::kRing;  // ... by ring attention
  c.run.steps = 30;
  c.run.dir = (std::filesystem::temp_directory_path() / ("own_model_" + std::to_string(::getppid()))).string();
  c.run.overwrite = true;
  c.schedule.lr = 3e-3;
  c.schedule.warmup_steps = 3;
  c.log.level = reel::LogLevel::kWarn;
  c.resolve();
  double first = 0, last = 0;
  {
    reel::Trainer trainer(c, runtime.world());
    for (int64_t step = 0; step < c.run.steps; ++step) {
      const double loss = trainer.train_step(step).loss;
      (step == 0 ? first : last) = loss;
    }
  }
  const bool ok = last < 0.5 * first;  // the same on every rank: the loss is global
  if (runtime.world()->rank() == 0) {
    std::filesystem::remove_all(c.run.dir);
    std::cout << (ok ? "OK: " : "FAILED: ") << "a model of this project's own (family wave) trained with reel on "
              << runtime.world()->size() << " rank(s), ring sequence parallel: loss " << first << " -> " << last
              << std::endl;
  }
  return ok ? 0 : 1;
}

}  // namespace wave

int main() {
  try {
    return wave::run();
  } catch (const std::exception& e) {
    std::cerr << "own_model: " << e.what() << std::endl;
    reel::abort_job(1);  // the other ranks would wait forever
  }
}
