// Learning-rate schedule: linear warm-up from 0, then cosine decay to min_ratio x lr (or
// constant) until total_steps; constant at the end value after that.
#pragma once

#include <cstdint>

#include "reel/dist/enum_names.hpp"

namespace reel {

enum class LrDecay { kCosine, kConstant };
constexpr EnumNames<LrDecay, 2> enum_names(LrDecay) {
  return {{{LrDecay::kCosine, "cosine"}, {LrDecay::kConstant, "constant"}}};
}

struct LrSchedule {
  double lr = 3e-4;
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  LrDecay decay = LrDecay::kCosine;
  double min_ratio = 0.1;

  void validate() const;  // throws std::invalid_argument naming the bad field
  // The learning rate of step `step` (0-based: the first update uses lr_at(0)).
  double lr_at(int64_t step) const;
};

}  // namespace reel
