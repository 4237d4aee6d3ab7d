// Model weights as a LibTorch archive of named parameters (torch::serialize), with the
// model configuration's preset name and shape checked on load.
#pragma once

#include <string>

#include "model/world_model.hpp"

namespace reel {

void save_weights(WorldModelImpl& model, const std::string& path);
// Throws std::runtime_error naming the file and the parameter on a missing parameter or
// a shape that differs from the model's.
void load_weights(WorldModelImpl& model, const std::string& path);

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
