#include "reel/data/samples.hpp"

#include <filesystem>

#include "reel/data/image.hpp"
#include "reel/data/video_file.hpp"
#include "reel/model/flow.hpp"

namespace reel {

std::string sample_path(const std::string& out_dir, int64_t clip) {
  // Rebuilt from its components: repeated and trailing separators go, "." and ".." stay
  // (resolving them lexically could name another folder than a symlink leads to).
  std::filesystem::path dir;
  for (const auto& part : std::filesystem::path(out_dir)) {
    if (!part.empty()) dir /= part;
  }
  return (dir / ("sample_" + std::to_string(clip) + ".png")).string();
}

SampleReport write_samples(WorldModelImpl& model, const std::string& data_path, int64_t first, int64_t count,
                           const std::string& out_dir, const SampleOptions& options) {
  const auto& cfg = model.config();
  VideoReader reader(data_path);
  const auto& info = reader.info();
  check_data_geometry(cfg, info.frames, info.height, info.width, info.channels, info.action_dim, data_path);
  if (first < 0 || count < 1 || first + count > info.clips) {
    throw std::invalid_argument(data_path + ": clips [" + std::to_string(first) + ", " + std::to_string(first + count) +
                                ") are not in the file's " + std::to_string(info.clips));
  }
  if (info.action_dim != 2) {
    throw std::invalid_argument(data_path + ": the rollout metrics need the physics world's 2 action dimensions, not " +
                                std::to_string(info.action_dim));
  }
  if (options.pictures > 0 && !out_dir.empty()) std::filesystem::create_directories(out_dir);
  RolloutSpec spec = options.rollout;
  spec.from_group = cfg.context_groups;
  spec.groups = cfg.groups() - cfg.context_groups;
  const int64_t c = cfg.context_groups * cfg.patch_t;
  SampleReport report{RolloutMetrics(spec.groups, cfg.frames - c), {}};
  for (int64_t start = first; start < first + count; start += options.batch) {
    std::vector<int64_t> ids;
    for (int64_t i = start; i < std::min(first + count, start + options.batch); ++i) ids.push_back(i);
    auto clips = reader.read(ids);
    auto video = frames_to_float(clips.frames);  // [B, T, C, H, W]
    auto tokens = patchify(video, cfg);
    auto reversed = reversed_actions(clips.actions, c - 1);
    auto predicted = unpatchify(rollout(model, tokens, clips.actions, ids, spec), cfg).clamp(-1, 1);
    auto predicted_rev = unpatchify(rollout(model, tokens, reversed, ids, spec), cfg).clamp(-1, 1);
    report.metrics.add(video, predicted, predicted_rev, clips.actions, c);
    for (size_t b = 0; b < ids.size() && ids[b] < first + options.pictures; ++b) {
      // Columns are frame numbers: the context in 0..c-1, the three futures under c..T-1.
      const auto future = [&](const char* label, const at::Tensor& v) {
        return GridRow{label, video_to_frames(v[b].narrow(0, c, cfg.frames - c)), c};
      };
      auto grid =
          labelled_grid({GridRow{"context", video_to_frames(video[b].narrow(0, 0, c)), 0},
                         future("predicted", predicted), future("truth", video), future("reversed", predicted_rev)},
                        2, options.zoom);
      const std::string file = sample_path(out_dir, ids[b]);
      write_png(file, grid);
      report.files.push_back(file);
    }
  }
  return report;
}

}  // namespace reel
