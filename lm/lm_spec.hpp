// The language model's family (model.family lm, train/model_spec.hpp): text corpora
// (lm/corpus.hpp), next-token cross-entropy, the presets of lm/lm_model.hpp. The reel
// executable registers it; a program of its own calls register_model_spec(lm_model_spec()).
#pragma once

#include <memory>

#include "reel/train/model_spec.hpp"

namespace reel {

std::shared_ptr<const ModelSpec> lm_model_spec();

}  // namespace reel
