// `reel plan`'s search: every layout of a job on a cluster, estimated (estimate.hpp),
// the ones that fit fastest first, and for the others why not.
//
// A layout is (dp, sp, sequence mode and Ulysses degree, HSDP shard group, activation
// checkpointing, micro-batches); dp x sp = the cluster's devices. For each of the first
// five, the fewest micro-batches that fit are taken (each more micro-batch gathers every
// block again). The other settings (dtypes, prefetch, resharding, balance) are the
// configuration's.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "reel/plan/estimate.hpp"

namespace reel {

struct Plan {
  Cluster cluster;
  ModelShape shape;
  std::vector<Estimate> fitting;   // fastest first
  std::vector<Estimate> rejected;  // with their reason
};

// given_only: estimate the configuration's own layout (as `reel train` would run it on
// the cluster's devices) instead of searching.
Plan make_plan(const TrainConfig& config, const Cluster& cluster, bool given_only);

// A layout in words: "dp 8 x sp 4 (ring), shard group 32, ac every 2, 2 micro-batches".
std::string describe_layout(const Estimate& e);
std::string plan_text(const Plan& plan, size_t top);
nlohmann::json plan_json(const Plan& plan);

}  // namespace reel
