// A model's architecture, as checkpoints and weights files record it, and the world
// model's named presets. `family` says which model it configures (train/model_spec.hpp):
//   world  the video world model: every field below applies;
//   lm     the causal language model (lm/): dim, depth, heads, mlp, mlp_ratio,
//          attention (causal), rope_theta, vocab and seq_len; the clip fields keep their
//          defaults and mean nothing;
//   other  a family a project registers, which reads the fields it documents.
#pragma once

#include <cstdint>
#include <string>

#include "reel/dist/enum_names.hpp"
#include "reel/model/sequence_shape.hpp"

namespace reel {

// The architecture's modes. Weights files and checkpoints store them as their names
// (data/weights.cpp), which therefore never change.
enum class MlpKind { kGelu, kSwiglu };
constexpr EnumNames<MlpKind, 2> enum_names(MlpKind) {
  return {{{MlpKind::kGelu, "gelu"}, {MlpKind::kSwiglu, "swiglu"}}};
}
// full | causal (frame-causal: own and earlier groups)
enum class AttentionKind { kFull, kCausal };
constexpr EnumNames<AttentionKind, 2> enum_names(AttentionKind) {
  return {{{AttentionKind::kFull, "full"}, {AttentionKind::kCausal, "causal"}}};
}
// One flow time per clip, or per frame-group.
enum class TimeSampling { kClip, kGroup };
constexpr EnumNames<TimeSampling, 2> enum_names(TimeSampling) {
  return {{{TimeSampling::kClip, "clip"}, {TimeSampling::kGroup, "group"}}};
}
// ModelConfig::context_sampling
enum class ContextSampling { kFixed, kRandom };
constexpr EnumNames<ContextSampling, 2> enum_names(ContextSampling) {
  return {{{ContextSampling::kFixed, "fixed"}, {ContextSampling::kRandom, "random"}}};
}

struct ModelConfig {
  std::string family = "world";
  std::string preset = "tiny";
  // Clip geometry: frames, channels, height, width; actions per frame.
  int64_t frames = 8, channels = 3, height = 16, width = 16, action_dim = 2;
  // Tubelet (patch) size along t, h, w.
  int64_t patch_t = 2, patch_h = 4, patch_w = 4;
  int64_t dim = 128, depth = 4, heads = 4;
  double mlp_ratio = 4.0;
  MlpKind mlp = MlpKind::kGelu;
  AttentionKind attention = AttentionKind::kCausal;
  // Flow matching: the first `context_groups` frame-groups stay clean (context).
  int64_t context_groups = 2;
  TimeSampling time_sampling = TimeSampling::kGroup;
  double logit_normal_mean = 0.0, logit_normal_std = 1.0;
  // How a rollout's history is trained for. fixed: groups < context_groups are the clean
  // history, the others targets. random: per clip, the history is the first k groups, k
  // drawn uniformly from [context_groups, groups - 1] (a rollout conditions on groups it
  // generated itself, which fixed training only ever shows noised).
  ContextSampling context_sampling = ContextSampling::kFixed;
  // History groups are shown noised to t ~ U(0, context_noise) per group (0: clean), so
  // that a rollout survives its own errors; rollouts show history at RolloutSpec::context_t.
  double context_noise = 0.0;
  double rope_theta = 10000.0;
  // Token models: the vocabulary size and the tokens of one sample (0 for the world model).
  int64_t vocab = 0, seq_len = 0;

  int64_t groups() const { return frames / patch_t; }  // G
  int64_t tokens_per_group() const { return (height / patch_h) * (width / patch_w); }
  // L: tokens per sample (the world model's groups x tokens per group; seq_len otherwise).
  int64_t tokens() const { return family == "world" ? groups() * tokens_per_group() : seq_len; }
  int64_t patch_dim() const { return patch_t * patch_h * patch_w * channels; }  // P
  int64_t head_dim() const { return dim / heads; }
  int64_t mlp_hidden() const;
  // How logs name it: the preset ("tiny"), after the family when it is not the world
  // model ("lm tiny").
  std::string name() const { return family == "world" ? preset : family + " " + preset; }
  SequenceShape sequence_shape() const { return {tokens(), dim, heads, attention == AttentionKind::kCausal}; }
  // The first MLP matrix's outputs: the hidden width, twice over for SwiGLU's gate.
  int64_t mlp_fc1() const { return mlp == MlpKind::kSwiglu ? 2 * mlp_hidden() : mlp_hidden(); }

  // Throws std::invalid_argument naming the first inconsistent field: the fields every
  // family shares (dim, depth, heads, mlp_ratio) and, for the world model, the rest.
  void validate() const;
};

// Throws std::invalid_argument naming `source` when clips of this geometry cannot feed
// the model: T, H or W not divisible by the patch size, or a different channel / action
// count than the model was built for.
void check_data_geometry(const ModelConfig& cfg, int64_t frames, int64_t height, int64_t width, int64_t channels,
                         int64_t action_dim, const std::string& source);

// "tiny" | "small" | "long_cpu" | "long" | "1b" | "7b"; anything else throws std::invalid_argument listing them.
ModelConfig model_preset(const std::string& name);

}  // namespace reel
