// parallelize(model, mesh, config): applies, in this fixed order,
//   1. sequence parallelism (replaces the attention function: parallel/sequence/),
//   2. activation checkpointing (wraps each chosen block's run),
//   3. FSDP (wraps that again: gather -> [checkpointed] block -> free).
// Why this order: checkpointing must sit inside FSDP's wrapper so that the recomputation
// in backward runs after FSDP has re-gathered the block's parameters; and sequence
// parallelism changes what a block computes, which both of the others only wrap.
#pragma once

#include <memory>

#include "reel/dist/process_mesh.hpp"
#include "reel/parallel/activation_checkpoint.hpp"
#include "reel/parallel/fsdp.hpp"
#include "reel/parallel/sequence/sequence_parallel.hpp"

namespace reel {

struct ParallelConfig {
  SequenceConfig sequence;
  ActivationCheckpointConfig activation_checkpoint;
  FsdpConfig fsdp;
  void validate() const;  // throws std::invalid_argument
};

// What parallelize() made: the sharded model, and the sequence split (which tokens of a
// clip this rank feeds the model: sequence->index()).
struct ParallelModel {
  std::shared_ptr<SequenceParallel> sequence;
  std::unique_ptr<FsdpModel> fsdp;
};

// Collective over mesh.world(). Sequence parallelism splits tokens over mesh.sp_group()
// (its ulysses and ring axes); FSDP shards over mesh.shard_group() (every dp x sp rank,
// or an HSDP group) and, with HSDP, replicates over mesh.replica_group(). The model may
// be deferred (no parameter memory): FSDP materialises only this rank's shards. Throws
// std::invalid_argument, before anything is sharded, for a split the model's shape does
// not allow.
ParallelModel parallelize(Model& model, const ProcessMesh& mesh, const ParallelConfig& config, uint64_t seed);

}  // namespace reel
