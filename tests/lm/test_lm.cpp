// The language model (lm/), reel's second model family, through the same machinery as
// the world model: the Trainer at 1-4 ranks against one plain rank (losses, every unit's
// gradient, the gradient norm and the final parameters within 1e-5) under FSDP, HSDP,
// gradient accumulation, activation checkpointing and sequence parallelism (Ulysses,
// ring, hybrid); the model's causality and its sequence split; the corpus and its file.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "reel/lm/corpus.hpp"
#include "reel/lm/lm_model.hpp"
#include "reel/lm/lm_spec.hpp"
#include "reel/train/trainer.hpp"
#include "tests/support/scratch.hpp"
#include "tests/support/test_env.hpp"
#include "tests/support/throws.hpp"
#include "tests/train/parity_support.hpp"

namespace reel::test {
namespace {

constexpr double kTol = 1e-5;

// One corpus and run directory for the whole binary, made by rank 0, removed at the end.
const std::string& scratch() {
  static const std::string dir = shared_scratch("reel_lm", [](const std::string& d) {
    CorpusSpec spec;
    spec.samples = 64;
    spec.seed = 3;
    write_corpus(d + "/text.h5", spec);
  });
  return dir;
}
const auto* const kRemoveScratch = remove_at_end(scratch);

// The lm tiny preset made small: 128 tokens, 2 blocks of 64 (4 heads of 16).
TrainConfig lm_config(int micro = 1) {
  TrainConfig c = parity_base(scratch() + "/text.h5", scratch() + "/run", micro);
  c.model_choice.family = "lm";
  c.run.steps = 8;
  c.schedule.lr = 3e-3;
  c.schedule.warmup_steps = 2;
  c.resolve();
  return c;
}

// Next-token cross-entropy written out: every position of every sample, in one forward.
ReferenceLoss lm_reference_loss() {
  auto sum = [](Model& model, const ModelConfig& cfg, const Batch& batch, int64_t, uint64_t) {
    const auto& tokens = batch.at("tokens");  // [b, L + 1]
    const int64_t l = cfg.seq_len;
    auto logits = dynamic_cast<LanguageModelImpl&>(model).forward(tokens.narrow(1, 0, l), at::arange(l, at::kLong));
    auto logp = at::log_softmax(logits, -1);                              // [b, L, V]
    auto picked = logp.gather(-1, tokens.narrow(1, 1, l).unsqueeze(-1));  // [b, L, 1]
    return -picked.sum();
  };
  return ReferenceLoss{sum, [](const ModelConfig& cfg) { return cfg.seq_len; }};  // one target per position
}

void expect_lm_parity(const TrainConfig& c) { expect_parity(c, lm_reference_loss(), kTol); }

// The reel executable registers the family; a test binary does it itself.
const bool kRegistered = (register_model_spec(lm_model_spec()), true);

TEST(LmParity, Fsdp) { expect_lm_parity(lm_config()); }
// The normalisation is the mean over targets: an untrained model (logits near 0) starts at
// the uniform guess's ln 28 nats per character, whatever the batch or the layout.
TEST(LmParity, AnUntrainedModelStartsAtTheUniformGuess) {
  const auto run = train_reference(lm_config(), lm_reference_loss());
  EXPECT_NEAR(run.steps.front().loss, std::log(double(kAlphabetSize)), 0.05);
}
TEST(LmParity, GradientAccumulationAndCheckpointing) {
  auto c = lm_config(2);
  c.parallel.activation_checkpoint.mode = CheckpointMode::kFull;
  expect_lm_parity(c);
}
TEST(LmParity, HybridShardingWithReplicasAndAsyncReduction) {
  if (world().size() == 1) GTEST_SKIP() << "HSDP needs replica groups of size > 1: at least 2 ranks";
  auto c = lm_config();
  c.mesh.shard_group = hsdp_shard_group(world().size());
  c.parallel.fsdp.async_reduce = AutoSwitch::kOn;
  expect_lm_parity(c);
}

// Each rank's tokens of every sample; attention exchanges them (the causal mask follows
// the positions wherever they are).
void expect_sequence_parity(SpMode mode, int ulysses) {
  const int n = world().size();
  if (n == 1) GTEST_SKIP() << "sequence parallelism needs 2 or more ranks";
  if (mode == SpMode::kHybrid && n < 4) GTEST_SKIP() << "hybrid needs 4 ranks (ulysses and ring degrees both > 1)";
  auto c = lm_config();
  c.mesh.dp = 1;
  c.mesh.sp = n;
  c.parallel.sequence.mode = mode;
  c.parallel.sequence.ulysses = ulysses;
  c.parallel.activation_checkpoint.mode = CheckpointMode::kEvery;
  c.resolve();
  if (c.model.heads % c.parallel.sequence.ulysses_degree(n) != 0) GTEST_SKIP() << "4 heads over " << n << " ranks";
  expect_lm_parity(c);
}
TEST(LmParity, SequenceParallelUlysses) { expect_sequence_parity(SpMode::kUlysses, 0); }
TEST(LmParity, SequenceParallelRing) { expect_sequence_parity(SpMode::kRing, 0); }
TEST(LmParity, SequenceParallelHybrid) { expect_sequence_parity(SpMode::kHybrid, 2); }

// A token's logits depend on it and the tokens before it, never on later ones; and the
// model run on any subset of positions gives those positions' logits of the whole run.
TEST(LmModel, IsCausalAndSplitsBySequencePosition) {
  auto cfg = lm_preset("tiny");
  cfg.seq_len = 32, cfg.dim = 32, cfg.depth = 2, cfg.heads = 2;
  LanguageModel model(cfg, ParamInit{at::kCPU, false, 4});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  auto tokens = at::randint(cfg.vocab, {2, cfg.seq_len}, gen, at::kLong);
  const auto all = at::arange(cfg.seq_len, at::kLong);
  auto logits = model->forward(tokens, all);
  auto changed = tokens.clone();
  changed.select(1, 20).fill_(0), changed.select(1, 21).fill_(1);
  auto after = model->forward(changed, all);
  EXPECT_TRUE(at::allclose(after.narrow(1, 0, 20), logits.narrow(1, 0, 20), 1e-6, 1e-6)) << "a later token leaked back";
  EXPECT_FALSE(at::allclose(after.narrow(1, 20, 12), logits.narrow(1, 20, 12))) << "the changed tokens changed nothing";
  // Positions 0-15 alone (a contiguous share) see exactly what they saw in the whole
  // sequence. Rotary positions are relative (a shift changes nothing), so the positions'
  // index is checked with a spread: the same 16 tokens at even positions attend otherwise.
  const auto first = at::arange(16, at::kLong), even = at::arange(0, 32, 2, at::kLong);
  EXPECT_TRUE(at::allclose(model->forward(tokens.narrow(1, 0, 16), first), logits.narrow(1, 0, 16), 1e-5, 1e-5));
  const auto part = tokens.narrow(1, 0, 16);
  EXPECT_FALSE(at::allclose(model->forward(part, even), model->forward(part, first), 1e-4, 1e-4))
      << "the positions' index is ignored";
}

TEST(LmModel, ADeferredModelHasNoMemoryAndRefusesToRun) {
  LanguageModel model(lm_preset("tiny"), ParamInit{at::kCPU, /*deferred=*/true});
  for (const auto& p : model->named_parameters()) EXPECT_FALSE(is_materialized(p.value())) << p.key();
  EXPECT_EQ(model->num_blocks(), 4u);
  EXPECT_THROW(model->forward(at::zeros({1, 4}, at::kLong), at::arange(4, at::kLong)), c10::Error);
}

TEST(LmModel, TheConfigurationIsCheckedWithNames) {
  auto cfg = lm_preset("tiny");
  cfg.attention = AttentionKind::kFull;
  const auto what = thrown<std::invalid_argument>([&] { validate_lm_config(cfg); });
  EXPECT_NE(what.find("causal"), std::string::npos) << what;
  EXPECT_THROW(lm_preset("huge"), std::invalid_argument);
}

TEST(Corpus, SamplesAreAFunctionOfSeedAndIndexAndTheFileHoldsThem) {
  CorpusSpec spec;
  spec.samples = 6, spec.seq_len = 40, spec.seed = 7;
  EXPECT_TRUE(corpus_sample(spec, 3).equal(corpus_sample(spec, 3)));
  EXPECT_FALSE(corpus_sample(spec, 3).equal(corpus_sample(spec, 4)));
  const auto text = decode_tokens(corpus_sample(spec, 0));
  EXPECT_EQ(text.size(), 41u);
  EXPECT_EQ(text.find('?'), std::string::npos) << text;
  const auto path = scratch() + "/corpus_" + std::to_string(world().rank()) + ".h5";
  write_corpus(path, spec);
  CorpusReader reader(path);
  EXPECT_EQ(reader.info().samples, 6);
  EXPECT_EQ(reader.info().seq_len, 40);
  EXPECT_EQ(reader.info().vocab, kAlphabetSize);
  EXPECT_TRUE(reader.info().checksums);
  EXPECT_EQ(reader.compute_content_sha256(), reader.info().content_sha256);
  auto rows = reader.read_samples({5, 1}).at("tokens");
  EXPECT_TRUE(rows[0].equal(corpus_sample(spec, 5)));
  EXPECT_TRUE(rows[1].equal(corpus_sample(spec, 1)));
  EXPECT_THROW(reader.read_samples({6}), std::runtime_error);
  std::filesystem::remove(path);
}

// The Trainer refuses a corpus of another length than the model's, naming both.
TEST(Corpus, AMismatchedCorpusIsRefusedByName) {
  auto c = lm_config();
  c.model_choice.preset = "small";                // 1,024 tokens per sample; the file holds 128
  c.model_choice.dim = c.model_choice.depth = 0;  // the preset's
  c.model_choice.mlp = MlpChoice::kPreset;
  c.resolve();
  const auto what = thrown<std::invalid_argument>([&] { Trainer trainer(c, runtime().world()); });
  EXPECT_NE(what.find("samples of 128 tokens"), std::string::npos) << what;
  EXPECT_NE(what.find("1024"), std::string::npos) << what;
}

}  // namespace
}  // namespace reel::test
