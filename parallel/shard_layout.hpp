// ShardLayout: how one FSDP unit's parameters lie in its flat buffer and which range each
// rank owns. A value: checkpoints record it and reshard from it; the optimizer builds its
// per-element masks (weight decay) from it.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace reel {

struct ParamSlot {
  std::string name;  // the model's parameter name
  std::vector<int64_t> shape;
  int64_t offset = 0;  // in the unit's flat buffer
  int64_t numel = 0;
};

struct UnitLayout {
  std::string name;
  std::vector<ParamSlot> params;
  int64_t numel = 0;   // sum of the parameters' sizes
  int64_t padded = 0;  // numel rounded up to a multiple of shards
  int64_t shard = 0;   // padded / shards: elements each rank owns
  int shards = 1;

  int64_t begin(int rank) const { return rank * shard; }
  // [shard] float over rank's range: 1 on the elements of parameters `pick` selects, 0
  // elsewhere (padding included).
  at::Tensor shard_mask(int rank, const std::function<bool(const ParamSlot&)>& pick) const;
};

// Parameters (name, shape) in the order given, packed without gaps, padded at the end.
UnitLayout make_unit_layout(const std::string& unit,
                            const std::vector<std::pair<std::string, std::vector<int64_t>>>& params, int shards);

}  // namespace reel
