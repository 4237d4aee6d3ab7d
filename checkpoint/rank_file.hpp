// One rank's part of a checkpoint: the snapshot (host copies taken on the training
// thread) and the HDF5 file written from it (on the background writer's thread).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "reel/checkpoint/format.hpp"
#include "reel/parallel/shard_layout.hpp"

namespace reel {

// A live FSDP unit shard and its AdamW moments: [shard] fp32 each, any device.
struct UnitShard {
  const UnitLayout* layout = nullptr;
  int shard_rank = 0;
  at::Tensor param, exp_avg, exp_avg_sq;
};

// A slice [begin, end) of one parameter's flat values, copied to host memory.
struct ShardPiece {
  std::string param;
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;
  at::Tensor values[3];  // params, exp_avg, exp_avg_sq: [end - begin] fp32 CPU
};

struct RankSnapshot {
  int rank = 0, world_size = 1;
  TrainState state;
  std::vector<ShardPiece> pieces;  // empty on HSDP replicas other than the first
};

extern const char* const kShardKinds[3];  // "params", "exp_avg", "exp_avg_sq"

// Copies the ranges each unit's shard holds (padding excluded) to host memory. With
// holds_tensors false (an HSDP replica whose shards another rank saves) only the state.
RankSnapshot take_snapshot(const std::vector<UnitShard>& units, const TrainState& state, int rank, int world_size,
                           bool holds_tensors);

// Writes dir/rank<R>.h5 from a snapshot, flushed to disk. Returns its record (size and a
// CRC-32 per dataset). Throws std::runtime_error naming the file and what failed.
FileRecord write_rank_file(const std::string& dir, const RankSnapshot& snapshot);

// The training state stored in a rank file (root, /train, /model, /config).
TrainState read_rank_state(const std::string& path);

}  // namespace reel
