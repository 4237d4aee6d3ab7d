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
#include "parallel/activation_checkpoint.hpp"
#include "parallel/fsdp.hpp"

namespace reel {

struct ParallelConfig {
  ActivationCheckpointConfig activation_checkpoint;
  FsdpConfig fsdp;
  void validate() const;  // throws std::invalid_argument
};

// Collective over mesh.world(). FSDP shards over mesh.shard_group() and, with HSDP,
// replicates over mesh.replica_group(). The model may be deferred (no parameter memory):
// FSDP materialises only this rank's shards. Throws std::invalid_argument for
// configurations this build cannot run (sequence-parallel degree > 1: sequence
// parallelism is not part of it yet).
std::unique_ptr<FsdpModel> parallelize(WorldModelImpl& model, const ProcessMesh& mesh, const ParallelConfig& config,
                                       uint64_t seed);

}  // namespace reel
