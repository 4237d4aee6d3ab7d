// FsdpConfig: its validation and its settings resolved for a device, and the one-rank
// aliasing rule that FsdpUnit and reel plan share (parallel/fsdp.hpp).
#include <stdexcept>

#include "reel/dist/require.hpp"
#include "reel/parallel/fsdp.hpp"

namespace reel {

at::ScalarType scalar_type(DtypeChoice choice, at::ScalarType automatic) {
  switch (choice) {
    case DtypeChoice::kFloat32:
      return at::kFloat;
    case DtypeChoice::kBFloat16:
      return at::kBFloat16;
    case DtypeChoice::kFloat16:
      return at::kHalf;
    case DtypeChoice::kAuto:
      break;
  }
  return automatic;
}

void FsdpConfig::validate() const {
  require(max_gathered >= 1, "parallel.max_gathered must be >= 1, got " + std::to_string(max_gathered));
  require(reduce_in_flight_mb >= 0, "parallel.reduce_in_flight_mb must be >= 0 (0: one unit at a time), got " +
                                        std::to_string(reduce_in_flight_mb));
}

namespace {
bool resolve(AutoSwitch s, const at::Device& device) {
  return s == AutoSwitch::kAuto ? device.is_cuda() : s == AutoSwitch::kOn;
}
}  // namespace

bool FsdpConfig::reduces_async(const at::Device& device) const { return resolve(async_reduce, device); }

bool FsdpConfig::prefetches(const at::Device& device) const { return resolve(prefetch, device); }

at::ScalarType FsdpConfig::param_type(const at::Device& device) const {
  return scalar_type(param_dtype, device.is_cuda() ? at::kBFloat16 : at::kFloat);
}

FsdpAliases fsdp_aliases(int shard_ranks, at::ScalarType param_dtype, at::ScalarType reduce_dtype, int replicas) {
  return {shard_ranks == 1 && param_dtype == at::kFloat,
          shard_ranks == 1 && reduce_dtype == at::kFloat && replicas <= 1};
}

}  // namespace reel
