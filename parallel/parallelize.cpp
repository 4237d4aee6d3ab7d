#include "reel/parallel/parallelize.hpp"

namespace reel {

void ParallelConfig::validate() const {
  sequence.validate();
  activation_checkpoint.validate();
  fsdp.validate();
}

ParallelModel parallelize(Model& model, const ProcessMesh& mesh, const ParallelConfig& config, uint64_t seed) {
  config.validate();
  ParallelModel out;
  // 1. Sequence parallelism: the attention function exchanges tokens over the sp group;
  //    every other layer is token-wise and runs on this rank's tokens unchanged.
  out.sequence = std::make_shared<SequenceParallel>(model, mesh, config.sequence);
  SequenceParallel::install(model, out.sequence);
  // 2. Activation checkpointing inside ...
  if (config.activation_checkpoint.mode != CheckpointMode::kNone) {
    model.set_block_runner(activation_checkpoint_runner(model, config.activation_checkpoint, model.block_runner()));
  }
  // 3. ... FSDP, over the mesh's shard group (every rank, or an HSDP group) and its replicas.
  //    Parameters shard over dp x sp alike: the loss is normalised by the global target
  //    count, so the SUM reduce-scatter over every rank is the global mean gradient.
  Communicator* replicas = mesh.hybrid() ? &mesh.replica_group() : nullptr;
  out.fsdp = std::make_unique<FsdpModel>(model, mesh.shard_group(), config.fsdp, seed, replicas);
  return out;
}

}  // namespace reel
