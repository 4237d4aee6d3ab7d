#include "reel/optim/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "reel/dist/require.hpp"

namespace reel {

void LrSchedule::validate() const {
  const Require need{"learning-rate schedule: "};
  need(std::isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got " + std::to_string(lr));
  need(warmup_steps >= 0, "warmup_steps must be >= 0");
  need(total_steps >= 1, "total_steps must be >= 1");
  need(min_ratio >= 0 && min_ratio <= 1, "min_ratio must be in [0, 1]");
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_steps) return lr * double(step + 1) / double(warmup_steps);
  if (decay == LrDecay::kConstant) return lr;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, double(step - warmup_steps) / double(span));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return lr * (min_ratio + (1.0 - min_ratio) * cosine);
}

}  // namespace reel
