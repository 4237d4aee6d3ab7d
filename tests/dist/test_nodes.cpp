// Nodes: what the mesh knows about placement across nodes, and the traffic split into
// bytes that stay inside a node and bytes that cross. CTest runs these twice: on one host
// as it is (one node), and as two emulated nodes of two ranks (REEL_NODE_NAME nodeA for
// world ranks 0-1, nodeB for 2-3; dist.nodes in tests/CMakeLists.txt). The emulated
// cluster (tests/multinode) checks the same against real nodes and the planner.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "reel/dist/error.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/dist/traffic.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

// True when this run emulates nodeA {0,1} and nodeB {2,3}.
bool two_nodes() { return std::getenv("REEL_NODE_NAME") != nullptr && world().size() == 4; }

int64_t delta(const traffic::Counts& before, const traffic::Counts& after, const std::string& key) {
  const auto d = traffic::since(before, after);
  const auto it = d.find(key);
  return it == d.end() ? 0 : it->second;
}

TEST(Nodes, ShardGroupReadsANumberOrNode) {
  auto read = [](const std::string& text, ShardGroup* g) {
    std::istringstream in(text);
    return static_cast<bool>(in >> *g);
  };
  ShardGroup g;
  ASSERT_TRUE(read("node", &g));
  EXPECT_TRUE(g.node());
  ASSERT_TRUE(read("4", &g));
  EXPECT_EQ(int(g), 4);
  EXPECT_FALSE(read("-1", &g));
  EXPECT_FALSE(read("nodes", &g));
  EXPECT_FALSE(read("2x", &g));
  std::ostringstream out;
  out << ShardGroup(ShardGroup::kNode) << " " << ShardGroup(3);
  EXPECT_EQ(out.str(), "node 3");
}

TEST(Nodes, PlacementNamesTheNodesAndTheAxesThatCross) {
  const int n = world().size();
  if (n % 2 != 0) GTEST_SKIP() << "needs an even world (sp 2)";
  MeshConfig config;
  config.sp = 2;
  config.shard_group = ShardGroup(ShardGroup::kNode);
  const auto mesh = ProcessMesh::create(runtime().world(), config);
  const std::string text = mesh.placement();
  if (two_nodes()) {
    EXPECT_EQ(mesh.nodes(), 2);
    EXPECT_EQ(text,
              "2 nodes x 2 ranks: nodeA {0,1}, nodeB {2,3}; across nodes: dp, replicate; inside a node: sp, "
              "ring, shard");
    EXPECT_EQ(mesh.shard_group().size(), 2);  // "node": shard inside each node
    EXPECT_EQ(mesh.replica_group().size(), 2);
    EXPECT_EQ(mesh.node_of(world().rank()), world().rank() / 2);
  } else {
    EXPECT_EQ(mesh.nodes(), 1);
    EXPECT_EQ(mesh.shard_group().size(), n) << "one node: shard_group node is plain FSDP";
    EXPECT_EQ(text.rfind("1 node x " + std::to_string(n) + " ranks: " + node_name(), 0), 0u) << text;
    EXPECT_EQ(text.find("across nodes"), std::string::npos) << text;
  }
}

TEST(Nodes, TrafficSplitsIntoBytesInsideAndAcrossNodes) {
  const int n = world().size(), rank = world().rank();
  const auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});  // sets the world's nodes
  const auto before = traffic::snapshot(), before_across = traffic::snapshot_internode();
  auto x = at::ones({1000}, at::kFloat);
  auto gathered = at::empty({1000 * n}, at::kFloat);
  mesh.world().all_gather(x, gathered);
  auto exchanged = at::empty({1000}, at::kFloat);
  if (1000 % n == 0) mesh.world().all_to_all(x, exchanged);
  const auto after = traffic::snapshot(), after_across = traffic::snapshot_internode();
  if (n == 1) return;  // one rank sends nothing
  EXPECT_EQ(delta(before, after, "world.all_gather"), (n - 1) * 4000);
  const int64_t ring_across = delta(before_across, after_across, "world.all_gather");
  const int64_t a2a_across = delta(before_across, after_across, "world.all_to_all");
  if (two_nodes()) {
    // A ring sends to the next rank: ranks 1 and 3 are the ones whose next is on the other node.
    EXPECT_EQ(ring_across, rank % 2 == 1 ? 3 * 4000 : 0);
    EXPECT_EQ(a2a_across, 2 * 1000) << "two of the four 1000-byte chunks go to the other node";
  } else {
    EXPECT_EQ(ring_across, 0);
    EXPECT_EQ(a2a_across, 0);
  }
}

TEST(Nodes, AnAllToAllAcrossNodesIsWarnedAbout) {
  if (!two_nodes()) GTEST_SKIP() << "needs the two emulated nodes (dist.nodes)";
  MeshConfig across;
  across.sp = 4;
  const auto warned = ProcessMesh::create(runtime().world(), across, 4).warnings();
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_NE(warned[0].find("--parallel.sp_mode hybrid --parallel.ulysses 2"), std::string::npos) << warned[0];
  // All-to-all inside each node, the ring across.
  EXPECT_TRUE(ProcessMesh::create(runtime().world(), across, 2).warnings().empty());
}

}  // namespace
}  // namespace reel::test
