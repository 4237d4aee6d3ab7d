// Rollouts of held-out clips: the world-model metrics (data/world_metrics.hpp) and PNG
// grids of what the model predicts.
#pragma once

#include <string>
#include <vector>

#include "reel/data/world_metrics.hpp"
#include "reel/model/rollout.hpp"
#include "reel/model/world_model.hpp"

namespace reel {

struct SampleOptions {
  RolloutSpec rollout;   // steps, seed, context level (from_group/groups: the model's)
  int64_t pictures = 4;  // PNG grids for the first this many clips
  int64_t zoom = 4;      // pixel zoom of the pictures
  int64_t batch = 16;    // clips rolled out together
};

struct SampleReport {
  RolloutMetrics metrics;
  std::vector<std::string> files;
};

// out_dir/sample_<clip>.png with one separator between them whatever out_dir ends with:
// "samples/" and "samples" both give "samples/sample_7.png"; "" gives "sample_7.png".
std::string sample_path(const std::string& out_dir, int64_t clip);

// Rolls the model out on clips [first, first + count) of a video file, under the true and
// under reversed actions, and measures them; writes sample_path(out_dir, clip) for the
// first `pictures` clips (report.files, in clip order): a labelled grid (data/image.hpp) of
// rows "context" | "predicted" | "truth" | "reversed" (predicted under reversed actions),
// columns the frame numbers 0..T-1 - the context row fills the first c = context frames,
// the other three the rest.
SampleReport write_samples(WorldModelImpl& model, const std::string& data_path, int64_t first, int64_t count,
                           const std::string& out_dir, const SampleOptions& options);

}  // namespace reel
