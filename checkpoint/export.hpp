// What `reel ckpt` does with a checkpoint besides verifying it: describe its tensors and
// export the consolidated model (one parameter at a time: memory is one parameter, not
// the model) to a weights file (data/weights.hpp) or to safetensors.
#pragma once

#include <string>
#include <vector>

#include "reel/checkpoint/reader.hpp"

namespace reel {

struct TensorSummary {
  std::string kind, param;  // kind: params | exp_avg | exp_avg_sq
  std::vector<int64_t> shape;
  double min = 0, max = 0, mean = 0;
};
// Every parameter and moment of the checkpoint, read, verified and summarised.
std::vector<TensorSummary> summarize(CheckpointReader& reader);

// The model's parameters as one reel weights file (HDF5, data/weights.hpp).
void export_weights(CheckpointReader& reader, const std::string& path);
// The model's parameters as safetensors: an 8-byte little-endian header size, a JSON
// header {name: {dtype: "F32", shape, data_offsets: [begin, end]}, "__metadata__": {...}}
// padded with spaces to a multiple of 8, then the raw little-endian data. Written under a
// temporary name, renamed into place when complete.
void export_safetensors(CheckpointReader& reader, const std::string& path);

}  // namespace reel
