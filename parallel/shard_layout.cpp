#include "reel/parallel/shard_layout.hpp"

#include <stdexcept>

namespace reel {

UnitLayout make_unit_layout(const std::string& unit,
                            const std::vector<std::pair<std::string, std::vector<int64_t>>>& params, int shards) {
  if (shards < 1) throw std::invalid_argument("shard count must be >= 1");
  UnitLayout layout;
  layout.name = unit;
  layout.shards = shards;
  for (const auto& [name, shape] : params) {
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    layout.params.push_back({name, shape, layout.numel, numel});
    layout.numel += numel;
  }
  layout.padded = (layout.numel + shards - 1) / shards * shards;
  layout.shard = layout.padded / shards;
  return layout;
}

at::Tensor UnitLayout::shard_mask(int rank, const std::function<bool(const ParamSlot&)>& pick) const {
  auto mask = at::zeros({shard}, at::kFloat);
  const int64_t lo = begin(rank), hi = lo + shard;
  for (const auto& p : params) {
    const int64_t a = std::max(lo, p.offset), b = std::min(hi, p.offset + p.numel);
    if (a < b && pick(p)) mask.narrow(0, a - lo, b - a).fill_(1.0f);
  }
  return mask;
}

}  // namespace reel
