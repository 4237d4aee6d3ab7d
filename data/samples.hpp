// Rollout pictures: a model rolled out on clips of a video file, drawn as PNG grids.
#pragma once

#include <string>
#include <vector>

#include "model/world_model.hpp"

namespace reel {

// Rolls the model out on clips [first, first + count) of a video file and writes one PNG
// per clip to out_dir/sample_<index>.png: rows context | predicted | ground truth,
// columns time. Returns the mean squared error of the predicted frames and of the
// copy-last-frame baseline, over all generated frames.
struct SampleReport {
  double model_mse = 0, copy_last_mse = 0;
  std::vector<std::string> files;
};
SampleReport write_samples(WorldModelImpl& model, const std::string& data_path, int64_t first, int64_t count,
                           const std::string& out_dir, int64_t steps, uint64_t seed, int64_t zoom = 4);

}  // namespace reel
