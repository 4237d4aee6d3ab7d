// ProcessMesh: the layout of ranks, data parallel (dp) x sequence parallel (sp), with
// named axes, and the FSDP sharding axes over it: parameters shard over all dp x sp
// ranks (FSDP), or (HSDP) within shard groups of consecutive ranks, replicated across
// the groups. Resolved and validated once, at creation; every sub-communicator is built
// then, so no later code creates communicators (which is collective and easy to get out
// of order).
//
// Placement: ranks are ordered by host (hosts in order of their lowest world rank), then
// by world rank; consecutive runs of `sp` ranks in that order form one sequence-parallel
// group. The sequence-parallel exchange (all-to-all or ring, every layer) is the heaviest
// and most latency-bound traffic, so its ranks sit on the same host whenever the host's
// rank count allows; the data-parallel axis (one reduction per step) spans hosts. HSDP
// shard groups are consecutive in the same order (the per-unit all-gathers and
// reduce-scatters stay inside a host where they fit); replicas span hosts.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "reel/dist/communicator.hpp"

namespace reel {

// The HSDP shard group as configured: a number of ranks (0: every rank, plain FSDP), or
// kNode, the ranks of one node (shard inside each node, replicate across nodes), which
// ProcessMesh resolves from the placement. Reads and writes as text: "0", "4", "node".
struct ShardGroup {
  static constexpr int kNode = -1;
  int ranks = 0;
  ShardGroup(int r = 0) : ranks(r) {}     // NOLINT: a rank count is a shard group
  operator int() const { return ranks; }  // NOLINT
  bool node() const { return ranks == kNode; }
};
std::istream& operator>>(std::istream& in, ShardGroup& group);
std::ostream& operator<<(std::ostream& out, const ShardGroup& group);

// The requested layout; create() resolves and validates it. The defaults live here.
struct MeshConfig {
  int dp = 0;              // data-parallel degree; 0: world size / sp
  int sp = 1;              // sequence-parallel degree
  ShardGroup shard_group;  // HSDP: ranks per shard group (0: shard over every rank, FSDP; node)

  // dp on a world of `world` ranks: dp, or for 0 world / sp (0 when sp does not divide it).
  int dp_for(int world) const;
  // Ranks per shard group on a world of `world` ranks with `ranks_per_node` on each node:
  // shard_group, every rank for 0, or ranks_per_node for node.
  int shard_ranks(int world, int ranks_per_node) const;
};

// The rules a layout's degrees obey, for ProcessMesh::create and for whoever lays out a job
// without its ranks (reel plan): "" when dp x sp is the world (both >= 1), the shard group
// divides it and the Ulysses degree divides sp; otherwise what is wrong, naming the numbers.
std::string mesh_degrees_error(int world, int dp, int sp, int shard_ranks, int ulysses = 1);

class ProcessMesh {
 public:
  // Collective over world. Throws std::invalid_argument naming the numbers unless the
  // degrees obey mesh_degrees_error's rules (for "node": every node runs the same number
  // of ranks). `ulysses`: the all-to-all degree inside sp, sp / ulysses the ring degree
  // (1: ring only; sp: Ulysses only); its owner is SequenceConfig::ulysses_degree
  // (parallel/sequence/layout.hpp).
  static ProcessMesh create(const CommunicatorPtr& world, const MeshConfig& config, int ulysses = 1);
  static ProcessMesh create(const CommunicatorPtr& world, int dp, int sp) {
    return create(world, MeshConfig{dp, sp, 0});
  }

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
  // Inside the sp group (sp = ulysses x ring): the ulysses consecutive ranks that
  // exchange heads by all-to-all, and the ranks with this rank's ulysses coordinate,
  // which pass key/value blocks round a ring (size sp / ulysses).
  Communicator& ulysses_group() const { return *ulysses_group_; }
  Communicator& ring_group() const { return *ring_group_; }
  int ulysses() const { return ulysses_group_->size(); }
  int ring() const { return ring_group_->size(); }
  // FSDP: the ranks that together hold one copy of the parameters (each a shard of it):
  // the whole world, or this rank's HSDP shard group.
  Communicator& shard_group() const { return *shard_; }
  // The ranks holding the same shard as this one (size world / shard group; 1 for FSDP).
  Communicator& replica_group() const { return *replicate_; }
  bool hybrid() const { return replicate_->size() > 1; }
  // By axis name: "world", "dp", "sp", "ulysses", "ring", "shard" or "replicate"; anything else throws
  // std::invalid_argument.
  Communicator& axis(const std::string& name) const;

  // World ranks of this rank's groups, in group-rank order.
  const std::vector<int>& dp_members() const { return dp_members_; }
  const std::vector<int>& sp_members() const { return sp_members_; }

  // "mesh dp=2 x sp=2 (world 4), FSDP over 4 ranks, this rank: dp 1, sp 0".
  std::string describe() const;

  // Nodes: ranks that share a host name share a node. Node indices follow placement order.
  int nodes() const { return static_cast<int>(node_names_.size()); }
  int node_of(int world_rank) const { return node_of_[world_rank]; }
  const std::string& node_name(int node) const { return node_names_[node]; }
  // "2 nodes x 2 ranks: rn1 {0,1}, rn2 {2,3}; across nodes: dp, replicate; inside a node:
  // sp, shard" (the axes of more than one rank; identical on every rank).
  std::string placement() const;
  // Layouts that send more across nodes than they need to (an all-to-all group spanning
  // nodes where a smaller Ulysses degree would keep it inside one); empty when none.
  std::vector<std::string> warnings() const;

 private:
  ProcessMesh() = default;

  int dp_ = 1, sp_ = 1, dp_rank_ = 0, sp_rank_ = 0;
  CommunicatorPtr world_, dp_group_, sp_group_, ulysses_group_, ring_group_, shard_, replicate_;
  std::vector<int> dp_members_, sp_members_;
  std::vector<int> node_of_;             // by world rank
  std::vector<std::string> node_names_;  // by node
  // Per axis (sp, ulysses, ring, dp, shard, replicate): whether some group of it spans nodes.
  std::vector<std::pair<std::string, bool>> axis_crosses_;
};

// Placement order: world ranks sorted by (host index, world rank), where host_of[r] is a
// host identifier of rank r and host indices follow first appearance. Exposed for tests.
std::vector<int> placement_order(const std::vector<std::string>& host_of);

}  // namespace reel
