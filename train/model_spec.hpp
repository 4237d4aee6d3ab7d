// A model family as the Trainer sees it: what `reel train` needs beyond the Model
// interface (model/model.hpp) — its presets, its data, its loss and its cost — in the
// manner of torchtitan's TrainSpec. Families are registered by name (model.family):
//   world  the video world model (train/world_spec.cpp), the default;
//   lm     the causal language model (lm/lm_spec.cpp);
// and a project adds its own with register_model_spec() before it builds a Trainer
// (examples/downstream does; CONTRIBUTING.md, "Adding a model").
//
// Loss normalisation (docs/training.md) is the Trainer's: a family returns the SUM of its
// per-target losses over this rank's share of a micro-batch, and the Trainer divides by
// targets_per_sample() x the global batch, so that the sum over ranks and micro-batches
// (and FSDP's SUM reduce-scatter of its gradients) is the global mean at every layout.
// A family's randomness (noise, masks) must be a function of (seed, step, global sample
// index) alone, never of the rank or of the token split, or layouts diverge.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reel/data/dataset.hpp"
#include "reel/data/loader.hpp"
#include "reel/model/config.hpp"
#include "reel/model/layers.hpp"
#include "reel/model/model.hpp"

namespace reel {

// What a family's loss is computed for.
struct LossContext {
  at::Tensor index;   // [Lc] int64 the positions of each sample this rank feeds the model (host)
  int64_t step = 0;   // the optimizer step (0-based); -1 for evaluation: fixed randomness
  uint64_t seed = 0;  // run.seed
  at::Device device = at::kCPU;
  // Runs a call of the model's own forward under FSDP (gathering its parameters); the
  // family calls the model only through it.
  std::function<at::Tensor(const std::function<at::Tensor()>&)> forward;
};

// A data file as the Trainer checks it before anything is built.
struct DataFileInfo {
  int64_t samples = 0;
  bool checksums = true;  // every sample carries a checksum (false: damage goes unseen; warned)
};

class ModelSpec {
 public:
  virtual ~ModelSpec() = default;
  virtual std::string family() const = 0;  // model.family
  // The presets' names, for --help and errors.
  virtual std::vector<std::string> presets() const = 0;
  // The architecture of preset `name` (family set); throws std::invalid_argument listing
  // presets() for an unknown name.
  virtual ModelConfig preset(const std::string& name) const = 0;
  // Throws std::invalid_argument naming the first field this family cannot run with.
  virtual void validate(const ModelConfig& cfg) const { cfg.validate(); }
  // The model, materialised or deferred (ParamInit, model/layers.hpp).
  virtual std::shared_ptr<Model> build(const ModelConfig& cfg, const ParamInit& init) const = 0;

  // --- data (data.path) ---
  // Opens a data file for the loader; throws std::runtime_error naming it.
  virtual std::unique_ptr<SampleReader> open_data(const std::string& path) const = 0;
  // Checks that the file can feed a model of cfg; throws std::invalid_argument (or the
  // reader's std::runtime_error) naming the path.
  virtual DataFileInfo check_data(const ModelConfig& cfg, const std::string& path) const = 0;
  // The command that writes a data file of cfg's shape with `samples` samples at `path`
  // (the hint for a missing file), or what data it needs where reel cannot write it.
  virtual std::string data_hint(const ModelConfig& cfg, const std::string& path, int64_t samples) const = 0;
  // The SHA-256 of the file's samples (docs/data.md): its stored attribute, or computed
  // when it has none (*computed then true). Throws std::runtime_error naming the file.
  virtual std::string content_sha256(const std::string& path, bool* computed) const = 0;

  // --- training ---
  // The SUM of the per-target losses of this rank's tokens of the batch (above).
  virtual at::Tensor loss_sum(const ModelConfig& cfg, Model& model, const Batch& batch,
                              const LossContext& ctx) const = 0;
  virtual int64_t targets_per_sample(const ModelConfig& cfg) const = 0;
  // FLOPs of the forward of `batch` samples, and of one block's forward (what activation
  // checkpointing recomputes); backward counts 2 x forward (train/throughput.hpp).
  virtual double forward_flops(const ModelConfig& cfg, int64_t batch) const = 0;
  virtual double block_forward_flops(const ModelConfig& cfg, int64_t batch) const = 0;
};

// The parts of a family that follow from its types: build() makes a ModelT (constructed
// from (cfg, init)); open_data() and content_sha256() use a ReaderT (a SampleReader
// constructed from the path, whose info().content_sha256 is the stored hash, "" when the
// file has none, and whose compute_content_sha256() reads every sample).
template <typename ModelT, typename ReaderT>
class TypedModelSpec : public ModelSpec {
 public:
  std::shared_ptr<Model> build(const ModelConfig& cfg, const ParamInit& init) const override {
    return std::make_shared<ModelT>(cfg, init);
  }
  std::unique_ptr<SampleReader> open_data(const std::string& path) const override {
    return std::make_unique<ReaderT>(path);
  }
  std::string content_sha256(const std::string& path, bool* computed) const override {
    ReaderT reader(path);
    *computed = reader.info().content_sha256.empty();
    return *computed ? reader.compute_content_sha256() : reader.info().content_sha256;
  }
};

// Adds a family, replacing one of the same name (which stays alive: a reference from
// model_spec() never dangles). Thread-safe; call before a configuration naming it is
// resolved (TrainConfig::resolve looks the family up), on every rank alike.
void register_model_spec(std::shared_ptr<const ModelSpec> spec);
// The family `name`; throws std::invalid_argument listing the registered ones.
const ModelSpec& model_spec(const std::string& name);
std::vector<std::string> model_families();

}  // namespace reel
