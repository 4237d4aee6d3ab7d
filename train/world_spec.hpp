// The world model's family (model.family world, the default): video files
// (data/video_file.hpp), flow matching (model/flow.hpp), the presets of model/config.hpp.
#pragma once

#include <memory>

#include "reel/train/model_spec.hpp"

namespace reel {

std::shared_ptr<const ModelSpec> world_model_spec();

}  // namespace reel
