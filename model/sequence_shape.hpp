// The shape of a model's token sequence that sequence parallelism and the planner split
// by (model/model.hpp: Model::sequence_shape). Plain numbers: no torch.
#pragma once

#include <cstdint>

namespace reel {

struct SequenceShape {
  int64_t tokens = 0;   // L: tokens per sample
  int64_t dim = 0;      // D: width of the activations between blocks
  int64_t heads = 0;    // attention heads (Ulysses splits them)
  bool causal = false;  // attention sees only its own and earlier causal groups
};

}  // namespace reel
