#include "reel/dist/process_mesh.hpp"
#include "reel/dist/watchdog.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <istream>
#include <map>
#include <numeric>
#include <ostream>
#include <sstream>

#include "reel/dist/error.hpp"

namespace reel {

std::vector<int> placement_order(const std::vector<std::string>& host_of) {
  std::map<std::string, int> host_index;
  for (const auto& h : host_of) host_index.emplace(h, static_cast<int>(host_index.size()));
  std::vector<int> order(host_of.size());
  for (size_t r = 0; r < order.size(); ++r) order[r] = static_cast<int>(r);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return host_index.at(host_of[a]) < host_index.at(host_of[b]); });
  return order;
}

namespace {

constexpr int kHostBytes = 256;

// Every rank's node name (dist/error.hpp: node_name), gathered over world.
std::vector<std::string> gather_hosts(Communicator& world) {
  auto mine = at::zeros({kHostBytes}, at::kByte);
  std::memcpy(mine.data_ptr(), node_name().data(), std::min<size_t>(node_name().size(), kHostBytes - 1));
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

std::istream& operator>>(std::istream& in, ShardGroup& group) {
  std::string text;
  in >> text;
  if (text == "node") {
    group.ranks = ShardGroup::kNode;
    return in;
  }
  size_t used = 0;
  try {
    group.ranks = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || group.ranks < 0) in.setstate(std::ios::failbit);
  return in;
}

std::ostream& operator<<(std::ostream& out, const ShardGroup& group) {
  return group.node() ? out << "node" : out << group.ranks;
}

namespace {

// One axis of the mesh as a function of a rank's placement position p: the ranks with
// p's color form p's group, ordered by key (the arguments of Communicator::split).
struct Axis {
  const char* name;
  std::function<int(int)> color, key;
};

// Ranks per node when every node runs the same number; 0 otherwise.
int uniform_ranks_per_node(const std::vector<int>& node_of, int nodes) {
  std::vector<int> count(nodes, 0);
  for (int n : node_of) ++count[n];
  for (int c : count) {
    if (c != count[0]) return 0;
  }
  return count.empty() ? 0 : count[0];
}

// The HSDP shard group in ranks: the configured count, every rank (0), or one node's ranks.
int shard_ranks(const MeshConfig& config, int n, const std::vector<int>& node_of, int nodes) {
  const int per_node = uniform_ranks_per_node(node_of, nodes);
  if (config.shard_group.node() && per_node == 0) {
    std::vector<int> count(nodes, 0);
    for (int node : node_of) ++count[node];
    std::string counts;
    for (int c : count) counts += (counts.empty() ? "" : ", ") + std::to_string(c);
    throw_invalid("ProcessMesh", "parallel.shard_group node needs the same number of ranks on every node; the " +
                                     std::to_string(nodes) + " nodes run " + counts +
                                     " (give the shard group as a number of ranks)");
  }
  return config.shard_ranks(n, per_node);
}

// This rank's group on axis `a` (collective over world), labelled with the axis's name and
// told which node each of its ranks runs on.
CommunicatorPtr split_axis(Communicator& world, const Axis& a, const std::vector<int>& order, int position,
                           const std::vector<int>& node_of) {
  auto group = world.split(a.color(position), a.key(position));
  group->set_label(a.name);
  std::vector<std::pair<int, int>> mine;  // (key, world rank) of this rank's group
  for (int p = 0; p < static_cast<int>(order.size()); ++p) {
    if (a.color(p) == a.color(position)) mine.emplace_back(a.key(p), order[p]);
  }
  std::sort(mine.begin(), mine.end());
  std::vector<int> nodes, members;
  for (const auto& member : mine) nodes.push_back(node_of[member.second]), members.push_back(member.second);
  group->set_nodes(nodes);
  Watchdog::set_members(group.get(), members);  // hang dumps name each group's world ranks (reel hang)
  return group;
}

// Whether some group of axis `a` has ranks on two nodes (the same answer on every rank).
bool axis_crosses(const Axis& a, const std::vector<int>& order, const std::vector<int>& node_of) {
  std::map<int, int> node_of_color;  // the node of each group's first rank seen
  for (int p = 0; p < static_cast<int>(order.size()); ++p) {
    const int node = node_of[order[p]];
    if (node_of_color.emplace(a.color(p), node).first->second != node) return true;
  }
  return false;
}

}  // namespace

int MeshConfig::dp_for(int world) const {
  if (dp != 0) return dp;
  return sp >= 1 && world % sp == 0 ? world / sp : 0;  // a world sp does not divide fails the checks
}

int MeshConfig::shard_ranks(int world, int ranks_per_node) const {
  if (shard_group.node()) return ranks_per_node;
  return shard_group > 0 ? int(shard_group) : world;
}

std::string mesh_degrees_error(int world, int dp, int sp, int shard_ranks, int ulysses) {
  const int n = world, k = shard_ranks;
  if (sp < 1) return "sequence parallel degree sp=" + std::to_string(sp) + " must be >= 1";
  if (k < 1 || n % k != 0) {
    return "HSDP shard group of " + std::to_string(k) + " ranks must divide the world size " + std::to_string(n) +
           " (0: shard over every rank; node: the ranks of one node)";
  }
  if (dp < 1 || static_cast<long>(dp) * sp != n) {
    return "data parallel degree dp=" + std::to_string(dp) + " x sequence parallel degree sp=" + std::to_string(sp) +
           " = " + std::to_string(static_cast<long>(dp) * sp) + " must equal the world size " + std::to_string(n) +
           " (both degrees >= 1)";
  }
  if (ulysses < 1 || sp % ulysses != 0) {
    return "Ulysses degree " + std::to_string(ulysses) +
           " must divide the sequence parallel degree sp=" + std::to_string(sp) + " (sp = ulysses x ring)";
  }
  return "";
}

ProcessMesh ProcessMesh::create(const CommunicatorPtr& world, const MeshConfig& config, int ulysses) {
  if (!world) throw std::invalid_argument("ProcessMesh: world communicator is null");
  const int n = world->size(), sp = config.sp;
  if (config.shard_group < 0 && !config.shard_group.node()) {
    throw_invalid("ProcessMesh", "HSDP shard group of " + std::to_string(int(config.shard_group)) +
                                     " ranks must be >= 0 (0: every rank) or node");
  }
  const int dp = config.dp_for(n);
  const std::vector<std::string> hosts = gather_hosts(*world);
  const std::vector<int> order = placement_order(hosts);
  ProcessMesh mesh;
  mesh.node_of_.assign(n, -1);
  for (int p = 0; p < n; ++p) {  // nodes numbered in placement order
    const int r = order[p];
    if (p == 0 || hosts[r] != hosts[order[p - 1]]) mesh.node_names_.push_back(hosts[r]);
    mesh.node_of_[r] = static_cast<int>(mesh.node_names_.size()) - 1;
  }
  const int k = shard_ranks(config, n, mesh.node_of_, mesh.nodes());
  const std::string wrong = mesh_degrees_error(n, dp, sp, k, ulysses);
  if (!wrong.empty()) throw_invalid("ProcessMesh", wrong);
  const int position = static_cast<int>(std::find(order.begin(), order.end(), world->rank()) - order.begin());
  mesh.dp_ = dp;
  mesh.sp_ = sp;
  mesh.dp_rank_ = position / sp;
  mesh.sp_rank_ = position % sp;
  mesh.world_ = world;
  // sp rank = ring coordinate x ulysses + ulysses coordinate: the all-to-all groups are
  // consecutive (the heavier traffic stays closest), the rings stride across them.
  const int u = ulysses;
  const std::vector<Axis> axes = {
      {"sp", [=](int p) { return p / sp; }, [=](int p) { return p % sp; }},
      {"ulysses", [=](int p) { return p / sp * (sp / u) + p % sp / u; }, [=](int p) { return p % sp % u; }},
      {"ring", [=](int p) { return p / sp * u + p % sp % u; }, [=](int p) { return p % sp / u; }},
      {"dp", [=](int p) { return p % sp; }, [=](int p) { return p / sp; }},
      {"shard", [=](int p) { return p / k; }, [=](int p) { return p % k; }},
      {"replicate", [=](int p) { return p % k; }, [=](int p) { return p / k; }},
  };
  std::vector<CommunicatorPtr> groups;
  for (const Axis& a : axes) {  // splits are collective over world: every rank makes all six, in this order
    groups.push_back(split_axis(*world, a, order, position, mesh.node_of_));
    mesh.axis_crosses_.emplace_back(a.name, axis_crosses(a, order, mesh.node_of_));
  }
  mesh.sp_group_ = groups[0];
  mesh.ulysses_group_ = groups[1];
  mesh.ring_group_ = groups[2];
  mesh.dp_group_ = groups[3];
  mesh.shard_ = groups[4];
  mesh.replicate_ = groups[5];
  world->set_nodes(mesh.node_of_);
  // HSDP chains each gradient reduce-scatter (shard) with an all-reduce (replicate), both
  // in flight behind the backward: one issue order over the two (Communicator::share_progress).
  mesh.replicate_->share_progress(*mesh.shard_);
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
  throw std::invalid_argument("unknown mesh axis '" + name +
                              "' (expected world, dp, sp, ulysses, ring, shard or replicate)");
}

std::string ProcessMesh::describe() const {
  const std::string sp_split =
      sp_ > 1 ? " (ulysses " + std::to_string(ulysses()) + " x ring " + std::to_string(ring()) + ")" : "";
  return "mesh dp=" + std::to_string(dp_) + " x sp=" + std::to_string(sp_) + sp_split + " (world " +
         std::to_string(world_size()) + "), " +
         (hybrid() ? "HSDP: shard groups of " + std::to_string(shard_->size()) + " x " +
                         std::to_string(replicate_->size()) + " replicas"
                   : "FSDP over " + std::to_string(shard_->size()) + " ranks") +
         ", this rank: dp " + std::to_string(dp_rank_) + ", sp " + std::to_string(sp_rank_);
}

std::string ProcessMesh::placement() const {
  std::vector<std::vector<int>> ranks(nodes());
  for (int r = 0; r < world_size(); ++r) ranks[node_of_[r]].push_back(r);
  const int per_node = uniform_ranks_per_node(node_of_, nodes());
  std::ostringstream out;
  out << nodes() << (nodes() == 1 ? " node" : " nodes");
  if (per_node > 0) out << " x " << per_node << (per_node == 1 ? " rank" : " ranks");
  out << ":";
  constexpr int kShown = 8;  // a 1,000-node job's log line stays a line
  for (int node = 0; node < nodes() && node < kShown; ++node) {
    out << (node ? ", " : " ") << node_names_[node] << " {";
    for (size_t i = 0; i < ranks[node].size(); ++i) out << (i ? "," : "") << ranks[node][i];
    out << "}";
  }
  if (nodes() > kShown) out << ", ... (" << nodes() - kShown << " more)";
  std::string across, inside;
  for (const auto& [name, crosses] : axis_crosses_) {
    if (axis(name).size() <= 1) continue;
    std::string& list = crosses ? across : inside;
    list += (list.empty() ? "" : ", ") + name;
  }
  if (!across.empty()) out << "; across nodes: " << across;
  if (!inside.empty()) out << "; inside a node: " << inside;
  return out.str();
}

std::vector<std::string> ProcessMesh::warnings() const {
  std::vector<std::string> out;
  const int u = ulysses(), per_node = uniform_ranks_per_node(node_of_, nodes());
  const bool crosses = std::any_of(axis_crosses_.begin(), axis_crosses_.end(),
                                   [](const auto& a) { return a.first == "ulysses" && a.second; });
  // A Ulysses degree g dividing sp and the ranks per node keeps every all-to-all group
  // (consecutive, starting at multiples of g) inside one node.
  const int g = per_node > 0 ? std::gcd(sp_, per_node) : 1;
  if (u > 1 && crosses && g > 1 && g < u) {
    out.push_back("the Ulysses all-to-all (" + std::to_string(u) +
                  " ranks, every layer, forward and backward) crosses nodes; with " + std::to_string(per_node) +
                  " ranks per node, --parallel.sp_mode hybrid --parallel.ulysses " + std::to_string(g) +
                  " keeps it inside a node and passes the ring across (" + std::to_string(sp_ / g) + " ranks)");
  }
  return out;
}

}  // namespace reel
