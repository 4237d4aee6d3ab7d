// ShardLayout: how one FSDP unit's parameters lie in its flat buffer and which range each
// rank owns. A value: checkpoints record it and reshard from it; the optimizer reads the
// no-decay mask from it.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace reel {

struct ParamSlot {
  std::string name;            // the model's parameter name
  std::vector<int64_t> shape;
  int64_t offset = 0;          // in the unit's flat buffer
  int64_t numel = 0;
  bool decay = true;           // weight decay applies (not to biases, norms, embeddings)
};

struct UnitLayout {
  std::string name;
  std::vector<ParamSlot> params;
  int64_t numel = 0;   // sum of the parameters' sizes
  int64_t padded = 0;  // numel rounded up to a multiple of shards
  int64_t shard = 0;   // padded / shards: elements each rank owns
  int shards = 1;

  int64_t begin(int rank) const { return rank * shard; }
  // The decay mask of rank's shard: [shard] float (1 decay, 0 not; padding 0).
  at::Tensor decay_mask(int rank) const;
};

// Parameters in the order given, packed without gaps, padded at the end.
UnitLayout make_unit_layout(const std::string& unit, const std::vector<std::pair<std::string, at::Tensor>>& params,
                            int shards);
// No weight decay for biases, 1-D parameters (norm scales) and embeddings.
bool decays(const std::string& name, const at::Tensor& param);

}  // namespace reel
