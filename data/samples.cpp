#include "data/samples.hpp"

#include <filesystem>

#include "data/image.hpp"
#include "data/video_file.hpp"
#include "model/flow.hpp"

namespace reel {

SampleReport write_samples(WorldModelImpl& model, const std::string& data_path, int64_t first, int64_t count,
                           const std::string& out_dir, int64_t steps, uint64_t seed, int64_t zoom) {
  const auto& cfg = model.config();
  VideoReader reader(data_path);
  const auto& info = reader.info();
  check_data_geometry(cfg, info.frames, info.height, info.width, info.channels, info.action_dim, data_path);
  if (first < 0 || count < 1 || first + count > info.clips) {
    throw std::invalid_argument(data_path + ": clips [" + std::to_string(first) + ", " + std::to_string(first + count) +
                                ") are not in the file's " + std::to_string(info.clips));
  }
  std::filesystem::create_directories(out_dir);
  const int64_t k = cfg.context_groups, lg = cfg.tokens_per_group(), g = cfg.groups();
  SampleReport report;
  for (int64_t i = first; i < first + count; ++i) {
    auto clip = reader.read({i});
    auto video = frames_to_float(clip.frames);  // [1, T, C, H, W]
    auto rolled = rollout(model, patchify(video, cfg).narrow(1, 0, k * lg), clip.actions, g - k, steps, seed + i);
    auto predicted = unpatchify(rolled, cfg).clamp(-1, 1)[0];  // [T, C, H, W]
    const int64_t c = k * cfg.patch_t;
    auto truth = video[0];
    auto future = truth.narrow(0, c, cfg.frames - c);
    report.model_mse += (predicted.narrow(0, c, cfg.frames - c) - future).pow(2).mean().item<double>() / count;
    report.copy_last_mse += (truth[c - 1].unsqueeze(0) - future).pow(2).mean().item<double>() / count;
    auto context_row = video_to_frames(truth.narrow(0, 0, c));
    auto grid = frame_grid({context_row, video_to_frames(predicted.narrow(0, c, cfg.frames - c)),
                            video_to_frames(future)}, 2, zoom);
    const std::string file = out_dir + "/sample_" + std::to_string(i) + ".png";
    write_png(file, grid);
    report.files.push_back(file);
  }
  return report;
}

}  // namespace reel
