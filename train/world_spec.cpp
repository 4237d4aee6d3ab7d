#include "reel/train/world_spec.hpp"

#include <sstream>

#include "reel/data/video_file.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/world_model.hpp"

namespace reel {
namespace {

template <typename... Parts>
std::string text(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

class WorldSpec : public TypedModelSpec<WorldModelImpl, VideoReader> {
 public:
  std::string family() const override { return "world"; }
  std::vector<std::string> presets() const override { return {"tiny", "small", "long_cpu", "long", "1b", "7b"}; }
  ModelConfig preset(const std::string& name) const override { return model_preset(name); }

  DataFileInfo check_data(const ModelConfig& cfg, const std::string& path) const override {
    const VideoFileInfo info = VideoReader(path).info();
    check_data_geometry(cfg, info.frames, info.height, info.width, info.channels, info.action_dim, path);
    return {info.clips, info.checksums};
  }

  // The physics world writes 3 channels and 2 action dims; other shapes are videos.
  std::string data_hint(const ModelConfig& m, const std::string& path, int64_t samples) const override {
    const std::string shape = text(m.frames, "x", m.height, "x", m.width);
    if (m.channels == 3 && m.action_dim == 2) {
      return text("write the physics world there first: reel data --out ", path, " --clips ", samples, " --frames ",
                  m.frames, " --height ", m.height, " --width ", m.width,
                  " (scripts/demo.sh writes runs/world.h5), or convert your videos (", shape,
                  ") with scripts/convert_videos.py (docs/data.md)");
    }
    return text("the model expects videos of ", shape, " (T x H x W) with ", m.action_dim,
                " action dims per frame: convert yours with scripts/convert_videos.py (docs/data.md)");
  }

  // Flow matching: the whole clip's noise and times (a function of the sample, not of the
  // split) drawn on the host; this rank moves only its sequence-parallel share.
  at::Tensor loss_sum(const ModelConfig& cfg, Model& model, const Batch& b, const LossContext& ctx) const override {
    auto& world = dynamic_cast<WorldModelImpl&>(model);
    const auto flow = to_device(select_tokens(make_flow_batch(patchify(frames_to_float(b.at("frames")), cfg),
                                                              b.sample_ids, ctx.step, ctx.seed, cfg),
                                              ctx.index),
                                ctx.device);
    const auto actions = b.at("actions").to(ctx.device);
    auto pred = ctx.forward([&] { return world.forward(flow.x_t, flow.t, actions, ctx.index); });
    return flow_loss_sum(pred, flow);
  }

  int64_t targets_per_sample(const ModelConfig& cfg) const override { return target_elements(cfg, 1); }
  double forward_flops(const ModelConfig& cfg, int64_t batch) const override { return reel::forward_flops(cfg, batch); }
  double block_forward_flops(const ModelConfig& cfg, int64_t batch) const override {
    return reel::block_forward_flops(cfg, batch);
  }
};

}  // namespace

std::shared_ptr<const ModelSpec> world_model_spec() { return std::make_shared<WorldSpec>(); }

}  // namespace reel
