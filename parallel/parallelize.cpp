#include "parallel/parallelize.hpp"

#include <stdexcept>
#include <string>

namespace reel {

void ParallelConfig::validate(int world) const {
  checkpoint.validate();
  if (shard_group < 0 || (shard_group > 0 && world % shard_group != 0)) {
    throw std::invalid_argument("HSDP shard group of " + std::to_string(shard_group) +
                                " ranks does not divide the world of " + std::to_string(world));
  }
}

ParallelModel parallelize(WorldModelImpl& model, const ProcessMesh& mesh, const ParallelConfig& config,
                          uint64_t seed) {
  auto& world = mesh.world();
  config.validate(world.size());
  // 1. Sequence parallelism: not in this build; refuse a mesh that asks for it rather than
  //    computing every sequence sp times.
  if (mesh.sp() > 1) {
    throw std::invalid_argument("sequence-parallel degree sp=" + std::to_string(mesh.sp()) +
                                " needs sequence parallelism, which this build does not have: use sp=1");
  }
  // 2. Activation checkpointing inside ...
  if (config.checkpoint.mode != "none") {
    model.set_block_runner(checkpoint_runner(model, config.checkpoint, model.block_runner()));
  }
  // 3. ... FSDP, over all ranks or (HSDP) within groups of consecutive ranks.
  ParallelModel out;
  const int k = config.shard_group > 0 ? config.shard_group : world.size();
  out.shard_comm = world.split(world.rank() / k, world.rank());
  out.replica_comm = world.split(world.rank() % k, world.rank());
  out.fsdp = std::make_unique<FsdpModel>(model, *out.shard_comm, config.fsdp, seed, out.replica_comm.get());
  return out;
}

}  // namespace reel
