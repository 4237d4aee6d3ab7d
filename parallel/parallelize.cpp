#include "parallel/parallelize.hpp"

#include <stdexcept>
#include <string>

namespace reel {

void ParallelConfig::validate() const {
  activation_checkpoint.validate();
  fsdp.validate();
}

std::unique_ptr<FsdpModel> parallelize(WorldModelImpl& model, const ProcessMesh& mesh, const ParallelConfig& config,
                                       uint64_t seed) {
  config.validate();
  // 1. Sequence parallelism: not in this build; refuse a mesh that asks for it rather than
  //    computing every sequence sp times.
  if (mesh.sp() > 1) {
    throw std::invalid_argument("sequence-parallel degree sp=" + std::to_string(mesh.sp()) +
                                " needs sequence parallelism, which this build does not have: use sp=1");
  }
  // 2. Activation checkpointing inside ...
  if (config.activation_checkpoint.mode != "none") {
    model.set_block_runner(activation_checkpoint_runner(model, config.activation_checkpoint, model.block_runner()));
  }
  // 3. ... FSDP, over the mesh's shard group (every rank, or an HSDP group) and its replicas.
  Communicator* replicas = mesh.hybrid() ? &mesh.replica_group() : nullptr;
  return std::make_unique<FsdpModel>(model, mesh.shard_group(), config.fsdp, seed, replicas);
}

}  // namespace reel
