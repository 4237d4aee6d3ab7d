#include "parallel/shard_layout.hpp"

#include <stdexcept>

namespace reel {

bool decays(const std::string& name, const at::Tensor& param) {
  return param.dim() >= 2 && name.find("bias") == std::string::npos && name.find("embed") == std::string::npos;
}

UnitLayout make_unit_layout(const std::string& unit, const std::vector<std::pair<std::string, at::Tensor>>& params,
                            int shards) {
  if (shards < 1) throw std::invalid_argument("shard count must be >= 1");
  UnitLayout layout;
  layout.name = unit;
  layout.shards = shards;
  for (const auto& [name, p] : params) {
    layout.params.push_back({name, p.sizes().vec(), layout.numel, p.numel(), decays(name, p)});
    layout.numel += p.numel();
  }
  layout.padded = (layout.numel + shards - 1) / shards * shards;
  layout.shard = layout.padded / shards;
  return layout;
}

at::Tensor UnitLayout::decay_mask(int rank) const {
  auto full = at::zeros({padded}, at::kFloat);
  for (const auto& p : params) {
    if (p.decay) full.narrow(0, p.offset, p.numel).fill_(1.0f);
  }
  return full.narrow(0, begin(rank), shard).clone();
}

}  // namespace reel
