// ProcessMesh: the 2-D layout of ranks, data parallel (dp) x sequence parallel (sp), with
// named axes. Validated once, at creation; every sub-communicator is built then, so no
// later code creates communicators (which is collective and easy to get out of order).
//
// Placement: ranks are ordered by host (hosts in order of their lowest world rank), then
// by world rank; consecutive runs of `sp` ranks in that order form one sequence-parallel
// group. The sequence-parallel exchange (all-to-all or ring, every layer) is the heaviest
// and most latency-bound traffic, so its ranks sit on the same host whenever the host's
// rank count allows; the data-parallel axis (one reduction per step) spans hosts.
#pragma once

#include <string>
#include <vector>

#include "dist/communicator.hpp"

namespace reel {

class ProcessMesh {
 public:
  // Collective over world. Throws std::invalid_argument unless dp >= 1, sp >= 1 and
  // dp * sp == world->size(), naming each degree.
  static ProcessMesh create(const CommunicatorPtr& world, int dp, int sp);

  int dp() const { return dp_; }
  int sp() const { return sp_; }
  int dp_rank() const { return dp_rank_; }  // coordinate along dp: which SP group
  int sp_rank() const { return sp_rank_; }  // coordinate along sp: which token slice
  int world_rank() const { return world_->rank(); }
  int world_size() const { return world_->size(); }

  Communicator& world() const { return *world_; }
  // The ranks with this rank's sp coordinate (size dp).
  Communicator& dp_group() const { return *dp_group_; }
  // The ranks with this rank's dp coordinate (size sp), consecutive in placement order.
  Communicator& sp_group() const { return *sp_group_; }
  // By axis name: "world", "dp" or "sp"; anything else throws std::invalid_argument.
  Communicator& axis(const std::string& name) const;

  // World ranks of this rank's groups, in group-rank order.
  const std::vector<int>& dp_members() const { return dp_members_; }
  const std::vector<int>& sp_members() const { return sp_members_; }

  // "mesh dp=2 x sp=2 (world 4), this rank: dp 1, sp 0".
  std::string describe() const;

 private:
  ProcessMesh() = default;

  int dp_ = 1, sp_ = 1, dp_rank_ = 0, sp_rank_ = 0;
  CommunicatorPtr world_, dp_group_, sp_group_;
  std::vector<int> dp_members_, sp_members_;
};

// Placement order: world ranks sorted by (host index, world rank), where host_of[r] is a
// host identifier of rank r and host indices follow first appearance. Exposed for tests.
std::vector<int> placement_order(const std::vector<std::string>& host_of);

}  // namespace reel
