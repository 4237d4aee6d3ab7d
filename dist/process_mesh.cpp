#include "dist/process_mesh.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "dist/error.hpp"

namespace reel {

std::vector<int> placement_order(const std::vector<std::string>& host_of) {
  std::map<std::string, int> host_index;
  for (const auto& h : host_of) host_index.emplace(h, static_cast<int>(host_index.size()));
  std::vector<int> order(host_of.size());
  for (size_t r = 0; r < order.size(); ++r) order[r] = static_cast<int>(r);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return host_index.at(host_of[a]) < host_index.at(host_of[b]);
  });
  return order;
}

namespace {

constexpr int kHostBytes = 256;

// Every rank's host name, gathered over world.
std::vector<std::string> gather_hosts(Communicator& world) {
  auto mine = at::zeros({kHostBytes}, at::kByte);
  std::memcpy(mine.data_ptr(), host_name().data(),
              std::min<size_t>(host_name().size(), kHostBytes - 1));
  auto all = at::empty({world.size() * kHostBytes}, at::TensorOptions(at::kByte).device(world.device()));
  world.all_gather(mine.to(world.device()), all);
  auto cpu = all.cpu();
  std::vector<std::string> hosts;
  for (int r = 0; r < world.size(); ++r) {
    hosts.emplace_back(reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>()) + r * kHostBytes);
  }
  return hosts;
}

}  // namespace

ProcessMesh ProcessMesh::create(const CommunicatorPtr& world, const MeshConfig& config) {
  if (!world) throw std::invalid_argument("ProcessMesh: world communicator is null");
  const int n = world->size(), sp = config.sp, k = config.shard_group > 0 ? config.shard_group : n;
  if (sp < 1) throw_invalid("ProcessMesh", "sequence parallel degree sp=" + std::to_string(sp) + " must be >= 1");
  // dp 0: whatever the world leaves for it (a world that sp does not divide fails below).
  const int dp = config.dp == 0 ? (n % sp == 0 ? n / sp : 0) : config.dp;
  if (config.shard_group < 0 || n % k != 0) {
    throw_invalid("ProcessMesh", "HSDP shard group of " + std::to_string(config.shard_group) +
                                     " ranks must divide the world size " + std::to_string(n) +
                                     " (0: shard over every rank)");
  }
  if (dp < 1 || sp < 1 || static_cast<long>(dp) * sp != n) {
    throw_invalid("ProcessMesh", "data parallel degree dp=" + std::to_string(dp) +
                                     " x sequence parallel degree sp=" + std::to_string(sp) +
                                     " = " + std::to_string(static_cast<long>(dp) * sp) +
                                     " must equal the world size " + std::to_string(n) +
                                     " (both degrees >= 1)");
  }
  if (config.ulysses < 1 || sp % config.ulysses != 0) {
    throw_invalid("ProcessMesh", "Ulysses degree " + std::to_string(config.ulysses) +
                                     " must divide the sequence parallel degree sp=" + std::to_string(sp) +
                                     " (sp = ulysses x ring)");
  }
  const std::vector<int> order = placement_order(gather_hosts(*world));
  const int position = static_cast<int>(
      std::find(order.begin(), order.end(), world->rank()) - order.begin());

  ProcessMesh mesh;
  mesh.dp_ = dp;
  mesh.sp_ = sp;
  mesh.dp_rank_ = position / sp;
  mesh.sp_rank_ = position % sp;
  mesh.world_ = world;
  // Splits are collective over world: every rank makes all six, in this order.
  mesh.sp_group_ = world->split(mesh.dp_rank_, mesh.sp_rank_);
  // sp rank = ring coordinate x ulysses + ulysses coordinate: the all-to-all groups are
  // consecutive (the heavier traffic stays closest), the rings stride across them.
  const int u = config.ulysses, ring_rank = mesh.sp_rank_ / u, ulysses_rank = mesh.sp_rank_ % u;
  mesh.ulysses_group_ = world->split(mesh.dp_rank_ * (sp / u) + ring_rank, ulysses_rank);
  mesh.ring_group_ = world->split(mesh.dp_rank_ * u + ulysses_rank, ring_rank);
  mesh.dp_group_ = world->split(mesh.sp_rank_, mesh.dp_rank_);
  mesh.shard_ = world->split(position / k, position % k);
  mesh.replicate_ = world->split(position % k, position / k);
  // HSDP chains each gradient reduce-scatter (shard) with an all-reduce (replicate), both
  // in flight behind the backward: one issue order over the two (Communicator::share_progress).
  mesh.replicate_->share_progress(*mesh.shard_);
  mesh.sp_group_->set_label("sp");
  mesh.dp_group_->set_label("dp");
  mesh.ulysses_group_->set_label("ulysses");
  mesh.ring_group_->set_label("ring");
  mesh.shard_->set_label("shard");
  mesh.replicate_->set_label("replicate");
  for (int s = 0; s < sp; ++s) mesh.sp_members_.push_back(order[mesh.dp_rank_ * sp + s]);
  for (int d = 0; d < dp; ++d) mesh.dp_members_.push_back(order[d * sp + mesh.sp_rank_]);
  return mesh;
}

Communicator& ProcessMesh::axis(const std::string& name) const {
  if (name == "world") return *world_;
  if (name == "dp") return *dp_group_;
  if (name == "sp") return *sp_group_;
  if (name == "ulysses") return *ulysses_group_;
  if (name == "ring") return *ring_group_;
  if (name == "shard") return *shard_;
  if (name == "replicate") return *replicate_;
  throw std::invalid_argument("unknown mesh axis '" + name + "' (expected world, dp, sp, ulysses, ring, shard or replicate)");
}

std::string ProcessMesh::describe() const {
  const std::string sp_split =
      sp_ > 1 ? " (ulysses " + std::to_string(ulysses()) + " x ring " + std::to_string(ring()) + ")" : "";
  return "mesh dp=" + std::to_string(dp_) + " x sp=" + std::to_string(sp_) + sp_split + " (world " +
         std::to_string(world_size()) + "), " +
         (hybrid() ? "HSDP: shard groups of " + std::to_string(shard_->size()) + " x " +
                         std::to_string(replicate_->size()) + " replicas"
                   : "FSDP over " + std::to_string(shard_->size()) + " ranks") +
         ", this rank: dp " + std::to_string(dp_rank_) + ", sp " +
         std::to_string(sp_rank_);
}

}  // namespace reel
