// `reel train --dry-run`: what a run would be, without training or allocating the model.
#pragma once

#include <string>

#include "reel/dist/communicator.hpp"
#include "reel/train/config.hpp"

namespace reel {

// Collective over world (builds the mesh; the model only as a deferred structure, so no
// rank allocates parameters). Checks the data file against the model. Returns, on every
// rank, the report rank 0 prints: the mesh and its groups, the sequence split,
// parameters, FLOPs per step, and an estimate of per-rank memory.
std::string dry_run_report(const TrainConfig& config, const CommunicatorPtr& world);

}  // namespace reel
