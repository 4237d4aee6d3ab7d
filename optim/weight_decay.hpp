// Which parameters AdamW decays: the policy, by parameter name and shape. No weight
// decay for biases, 1-D parameters (norm scales) and embeddings; decay for every other
// matrix. The optimizer applies it through a per-element mask over each flat shard.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace reel {

bool decays(const std::string& name, at::IntArrayRef shape);

}  // namespace reel
