// parallelize(model, mesh, config): applies, in this fixed order,
//   1. sequence parallelism (replaces the attention function; a later step),
//   2. activation checkpointing (wraps each chosen block's run),
//   3. FSDP (wraps that again: gather -> [checkpointed] block -> free).
// Why this order: checkpointing must sit inside FSDP's wrapper so that the recomputation
// in backward runs after FSDP has re-gathered the block's parameters; and sequence
// parallelism changes what a block computes, which both of the others only wrap.
#pragma once

#include <memory>

#include "dist/process_mesh.hpp"
#include "parallel/checkpoint.hpp"
#include "parallel/fsdp.hpp"

namespace reel {

struct ParallelConfig {
  CheckpointConfig checkpoint;
  FsdpConfig fsdp;
  // 0: shard over all ranks (FSDP). k > 0: hybrid sharding (HSDP): shard within groups of
  // k consecutive ranks, replicate across the world / k groups.
  int shard_group = 0;
  void validate(int world) const;  // throws std::invalid_argument
};

struct ParallelModel {
  CommunicatorPtr shard_comm;    // the ranks sharing one copy of the parameters
  CommunicatorPtr replica_comm;  // the ranks holding the same shard (size 1 without HSDP)
  std::unique_ptr<FsdpModel> fsdp;
};

// Collective over mesh.world(). Throws std::invalid_argument for configurations this build
// cannot run (sequence-parallel degree > 1: sequence parallelism is not part of it yet).
ParallelModel parallelize(WorldModelImpl& model, const ProcessMesh& mesh, const ParallelConfig& config,
                          uint64_t seed);

}  // namespace reel
