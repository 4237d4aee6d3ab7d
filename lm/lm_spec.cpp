#include "reel/lm/lm_spec.hpp"

#include <stdexcept>

#include "reel/lm/corpus.hpp"
#include "reel/lm/lm_model.hpp"

namespace reel {
namespace {

class LmSpec : public TypedModelSpec<LanguageModelImpl, CorpusReader> {
 public:
  std::string family() const override { return "lm"; }
  std::vector<std::string> presets() const override { return {"tiny", "small"}; }
  ModelConfig preset(const std::string& name) const override { return lm_preset(name); }
  void validate(const ModelConfig& cfg) const override { validate_lm_config(cfg); }

  DataFileInfo check_data(const ModelConfig& cfg, const std::string& path) const override {
    const CorpusInfo info = CorpusReader(path).info();
    if (info.seq_len != cfg.seq_len) {
      throw std::invalid_argument(path + ": samples of " + std::to_string(info.seq_len) +
                                  " tokens (and the next one), the model reads " + std::to_string(cfg.seq_len) +
                                  " (model.preset " + cfg.preset +
                                  "): write a corpus for it with reel data --kind text --seq-len " +
                                  std::to_string(cfg.seq_len) + " (--overwrite replaces this file)");
    }
    if (info.vocab > cfg.vocab) {
      throw std::invalid_argument(path + ": a vocabulary of " + std::to_string(info.vocab) + " tokens, the model has " +
                                  std::to_string(cfg.vocab));
    }
    return {info.samples, info.checksums};
  }

  std::string data_hint(const ModelConfig& cfg, const std::string& path, int64_t samples) const override {
    return "write a text corpus there first: reel data --kind text --out " + path + " --samples " +
           std::to_string(samples) + " --seq-len " + std::to_string(cfg.seq_len) + " (docs/lm.md)";
  }

  // Next-token cross-entropy over this rank's positions: the input at position p is
  // token p of the sample, its target token p + 1 (the file holds seq_len + 1 tokens).
  at::Tensor loss_sum(const ModelConfig& cfg, Model& model, const Batch& b, const LossContext& ctx) const override {
    auto& lm = dynamic_cast<LanguageModelImpl&>(model);
    const auto& tokens = b.at("tokens");  // [b, seq_len + 1] int64 (host)
    const auto index = ctx.index.to(at::kLong);
    const auto inputs = tokens.index_select(1, index).to(ctx.device);
    const auto targets = tokens.index_select(1, index + 1).to(ctx.device);
    auto logits = ctx.forward([&] { return lm.forward(inputs, index); });  // [b, Lc, vocab]
    return at::cross_entropy_loss(logits.to(at::kFloat).reshape({-1, cfg.vocab}), targets.reshape({-1}), {},
                                  at::Reduction::Sum);
  }

  int64_t targets_per_sample(const ModelConfig& cfg) const override { return cfg.seq_len; }

  double block_forward_flops(const ModelConfig& cfg, int64_t batch) const override {
    const double l = double(cfg.seq_len) * batch, d = cfg.dim;
    const double hidden = cfg.mlp_hidden(), fc1_out = cfg.mlp_fc1();
    double flops = 2 * l * d * (3 * d) + 2 * l * d * d + 2 * l * d * fc1_out + 2 * l * hidden * d;
    flops += 2 * 2 * double(batch) * cfg.seq_len * cfg.seq_len * d;  // scores and values, dense L x L
    return flops;
  }

  double forward_flops(const ModelConfig& cfg, int64_t batch) const override {
    return cfg.depth * block_forward_flops(cfg, batch) + 2.0 * cfg.seq_len * batch * cfg.dim * cfg.vocab;  // + head
  }
};

}  // namespace

std::shared_ptr<const ModelSpec> lm_model_spec() { return std::make_shared<LmSpec>(); }

}  // namespace reel
