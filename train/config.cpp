#include "reel/train/config.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "reel/dist/require.hpp"
#include "reel/dist/trace.hpp"
#include "reel/train/model_spec.hpp"

namespace reel {

ModelConfig ModelChoice::resolve() const {
  require(depth >= 0 && dim >= 0, "model.depth and model.dim must be >= 0 (0: the preset's)");
  const ModelSpec& spec = model_spec(family);
  ModelConfig c = spec.preset(preset);
  c.family = spec.family();
  c.attention = attention;
  if (mlp != MlpChoice::kPreset) c.mlp = mlp == MlpChoice::kSwiglu ? MlpKind::kSwiglu : MlpKind::kGelu;
  if (depth > 0) c.depth = depth;
  if (dim > 0) c.dim = dim;
  c.context_sampling = context_sampling;
  c.context_noise = context_noise;
  spec.validate(c);
  return c;
}

void DataConfig::validate() const {
  require(!path.empty(), "data.path is required (reel data --out FILE writes the physics world)");
  require(global_batch >= 1, "data.global_batch must be >= 1, got " + std::to_string(global_batch));
  require(micro_batches >= 1 && global_batch % micro_batches == 0,
          "data.micro_batches " + std::to_string(micro_batches) + " must divide data.global_batch " +
              std::to_string(global_batch));
  require(micro_batch >= 0, "data.micro_batch must be >= 0 (0: off)");
  require(
      micro_batch == 0 || micro_batches == 1,
      "give data.micro_batch (clips per rank; the count follows from the world size) or data.micro_batches, not both");
  require(eval_clips >= 0, "data.eval_clips must be >= 0");
  require(prefetch >= 0, "data.prefetch must be >= 0");
}

int64_t DataConfig::micro_batches_for(int dp) const {
  if (micro_batch == 0) return micro_batches;
  const int64_t per_micro = micro_batch * dp;  // clips in one micro-batch over all ranks
  require(dp >= 1 && global_batch % per_micro == 0, "data.global_batch " + std::to_string(global_batch) +
                                                        " does not split into micro-batches of data.micro_batch " +
                                                        std::to_string(micro_batch) +
                                                        " clip(s) on each of dp=" + std::to_string(dp) + " ranks (" +
                                                        std::to_string(per_micro) + " clips per micro-batch)");
  return global_batch / per_micro;
}

bool DataConfig::splits(int64_t micro_batches, int dp) const {
  return dp >= 1 && micro_batches >= 1 && global_batch % micro_batches == 0 && global_batch / micro_batches % dp == 0;
}

int64_t DataConfig::layout_micro_batches(int dp) const {
  const int64_t m = micro_batches_for(dp);
  require(splits(m, dp), "a micro-batch of " + std::to_string(global_batch / m) + " clips (data.global_batch " +
                             std::to_string(global_batch) + " / " + std::to_string(m) +
                             " micro-batch(es)) does not divide over " + std::to_string(dp) + " data-parallel ranks");
  // Evaluation splits the held-out clips over dp: a rank with none would skip the
  // forward (and its collectives) that the others run.
  require(eval_clips == 0 || eval_clips >= dp, "data.eval_clips " + std::to_string(eval_clips) +
                                                   " must be 0 or at least dp=" + std::to_string(dp) +
                                                   " (every data-parallel rank evaluates some held-out clips)");
  return m;
}

void RunConfig::validate() const {
  require(steps >= 1, "run.steps must be >= 1");
  require(!dir.empty(), "run.dir must not be empty");
  require(log_every >= 1 && eval_every >= 0, "run.log_every must be >= 1 and run.eval_every >= 0");
  require(std::isfinite(peak_flops) && peak_flops >= 0, "run.peak_flops must be finite and >= 0");
  require(!resume.empty(), "run.resume must be auto, never or the path of a checkpoint");
  require(max_skips >= 1, "run.max_skips must be >= 1, got " + std::to_string(max_skips));
  require(rollout_steps >= 0, "run.rollout_steps must be >= 0 (0: no rollout metrics)");
  require(rollout_context_t >= 0 && rollout_context_t < 1, "run.rollout_context_t must be in [0, 1)");
}

void CheckpointConfig::validate() const {
  require(every >= 0, "checkpoint.every must be >= 0 (0: only at the end)");
  require(keep >= 0, "checkpoint.keep must be >= 0 (0: keep all)");
}

void TrainConfig::resolve() {
  model = model_choice.resolve();
  model_choice.depth = model.depth;  // what the written configuration records
  model_choice.dim = model.dim;
  model_choice.mlp = model.mlp == MlpKind::kSwiglu ? MlpChoice::kSwiglu : MlpChoice::kGelu;
  schedule.total_steps = run.steps;
  // runs/tiny/ and runs/tiny are one directory: every path built from it reads runs/tiny/x.
  while (run.dir.size() > 1 && run.dir.back() == '/') run.dir.pop_back();
  data.validate();
  run.validate();
  checkpoint.validate();
  straggler.validate();
  require(mesh.dp >= 0 && mesh.sp >= 1 && (mesh.shard_group >= 0 || mesh.shard_group.node()),
          "parallel.dp must be >= 0, parallel.sp >= 1 and parallel.shard_group >= 0 or node");
  parallel.validate();
  parallel.sequence.ulysses_degree(mesh.sp);  // a hybrid split sp does not allow fails here
  adamw.validate();
  schedule.validate();
  require(std::isfinite(clip), "optim.clip must be finite");
  trace::parse_steps(log.trace);  // log.trace: a bad range is a usage error here, before MPI starts
  require(runtime.threads >= 0, "dist.threads must be >= 0");
  require(runtime.timeout_s >= 0, "dist.timeout must be >= 0 seconds (0: never)");
  require(runtime.node_timeout_s >= 0, "dist.node_timeout must be >= 0 seconds (0: never)");
  require(runtime.desync_every >= 0, "dist.desync_every must be >= 0 steps (0: never)");
}

std::string config_ini(const TrainConfig& config) {
  std::ostringstream out;
  out << "# The resolved configuration of a reel train run: reel train --config FILE repeats it.\n";
  out << std::setprecision(std::numeric_limits<double>::max_digits10) << std::boolalpha;
  std::string section;
  TrainConfig c = config;
  if (c.data.micro_batch > 0) c.data.micro_batches = 1;  // derived from micro_batch again when read back
  visit_train_options(c, [&](const std::string& key, const auto& field, const char*) {
    const auto dot = key.find('.');
    if (key.substr(0, dot) != section) {
      section = key.substr(0, dot);
      out << "\n[" << section << "]\n";
    }
    out << key.substr(dot + 1) << " = ";
    if constexpr (std::is_same_v<std::decay_t<decltype(field)>, double>) {
      char buf[32];  // the shortest text that reads back as the same double: 0.003, not 0.0030000000000000001
      const auto end = std::to_chars(buf, buf + sizeof(buf), field).ptr;
      out << std::string(buf, end) << "\n";
    } else {
      out << field << "\n";
    }
  });
  return out.str();
}

void write_config_ini(const TrainConfig& config, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  out << config_ini(config);
  out.flush();
  if (!out) throw std::runtime_error("cannot write the run's configuration to " + path);
}

}  // namespace reel
