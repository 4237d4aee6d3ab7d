#include "reel/model/config.hpp"

#include "reel/dist/require.hpp"

namespace reel {

int64_t ModelConfig::mlp_hidden() const {
  // SwiGLU has three matrices instead of two: 2/3 of the hidden width keeps the FLOPs.
  const double width = mlp == MlpKind::kSwiglu ? dim * mlp_ratio * 2.0 / 3.0 : dim * mlp_ratio;
  return (static_cast<int64_t>(width) + 7) / 8 * 8;
}

void ModelConfig::validate() const {
  const Require require{"model config: "};
  require(dim > 0 && depth > 0 && heads > 0 && dim % heads == 0, "dim must be a positive multiple of heads");
  require(mlp_ratio > 0, "mlp_ratio must be > 0");
  if (family != "world") return;  // the family's own rules: its ModelSpec validates the rest
  require(frames > 0 && channels > 0 && height > 0 && width > 0, "frames, channels, height, width must be > 0");
  require(action_dim >= 0, "action_dim must be >= 0");
  require(patch_t > 0 && patch_h > 0 && patch_w > 0, "patch sizes must be > 0");
  require(frames % patch_t == 0,
          "frames " + std::to_string(frames) + " not divisible by patch_t " + std::to_string(patch_t));
  require(height % patch_h == 0,
          "height " + std::to_string(height) + " not divisible by patch_h " + std::to_string(patch_h));
  require(width % patch_w == 0,
          "width " + std::to_string(width) + " not divisible by patch_w " + std::to_string(patch_w));
  require(head_dim() % 2 == 0 && head_dim() >= 6, "head_dim must be even and >= 6 (3-D RoPE bands)");
  require(context_groups >= 0 && context_groups < groups(),
          "context_groups must be in [0, groups=" + std::to_string(groups()) + ")");
  require(logit_normal_std > 0, "logit_normal_std must be > 0");
  require(context_noise >= 0 && context_noise < 1, "context_noise must be in [0, 1)");
  require(context_sampling == ContextSampling::kFixed || context_groups >= 1,
          "context_sampling random needs context_groups >= 1");
}

void check_data_geometry(const ModelConfig& cfg, int64_t frames, int64_t height, int64_t width, int64_t channels,
                         int64_t action_dim, const std::string& source) {
  const Require need{source + ": "};
  need(frames % cfg.patch_t == 0,
       "T=" + std::to_string(frames) + " is not divisible by the patch size pt=" + std::to_string(cfg.patch_t));
  need(height % cfg.patch_h == 0,
       "H=" + std::to_string(height) + " is not divisible by the patch size ph=" + std::to_string(cfg.patch_h));
  need(width % cfg.patch_w == 0,
       "W=" + std::to_string(width) + " is not divisible by the patch size pw=" + std::to_string(cfg.patch_w));
  need(frames == cfg.frames && height == cfg.height && width == cfg.width,
       "clips are " + std::to_string(frames) + "x" + std::to_string(height) + "x" + std::to_string(width) +
           " (T x H x W) but the model expects " + std::to_string(cfg.frames) + "x" + std::to_string(cfg.height) + "x" +
           std::to_string(cfg.width));
  need(channels == cfg.channels,
       "clips have " + std::to_string(channels) + " channels, the model " + std::to_string(cfg.channels));
  need(action_dim == cfg.action_dim,
       "clips have " + std::to_string(action_dim) + " action dims, the model " + std::to_string(cfg.action_dim));
}

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  c.preset = name;
  if (name == "tiny") return c;  // trains in CI on 2 cores: 8 x 16 x 16 clips, L = 4 x 4 x 4 = 64 tokens
  if (name == "small") {
    c.frames = 16;
    c.height = c.width = 64;
    c.patch_h = c.patch_w = 8;
    c.dim = 384;
    c.depth = 8;
    c.heads = 6;
    c.context_groups = 4;
    return c;
  }
  if (name == "long_cpu") {  // long context on CPU: 32 frames of 32 x 32, 16 groups x 64 = 1,024 tokens
    c.frames = 32;
    c.height = c.width = 32;
    c.dim = 64;
    c.depth = 2;
    c.heads = 4;
    c.context_groups = 4;
    return c;
  }
  // The GPU presets: 256 x 256 frames in 16 x 16 patches, 8 action dims, SwiGLU.
  const bool gpu = name == "long" || name == "1b" || name == "7b";
  if (!gpu) {
    throw std::invalid_argument("unknown model preset '" + name + "' (expected tiny, small, long_cpu, long, 1b or 7b)");
  }
  c.height = c.width = 256;
  c.patch_h = c.patch_w = 16;
  c.action_dim = 8;
  c.mlp = MlpKind::kSwiglu;
  c.dim = 2048;  // long and 1b: one width
  c.depth = 20;
  c.heads = 16;
  if (name == "long") {  // a minute of 256 x 256 at 16 fps: 480 groups x 256 = 122,880 tokens
    c.frames = 960;
    c.context_groups = 120;
  } else if (name == "1b") {
    c.frames = 32;
    c.context_groups = 8;
  } else {  // 7b
    c.frames = 64;
    c.dim = 4096;
    c.depth = 32;
    c.heads = 32;
    c.context_groups = 16;
  }
  return c;
}

}  // namespace reel
