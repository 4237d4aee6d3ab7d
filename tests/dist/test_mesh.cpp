// ProcessMesh: validation, membership of the dp and sp groups, placement, and the
// independence of collectives on two groups interleaved.
#include <gtest/gtest.h>

#include "reel/dist/process_mesh.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

// Sum over a group of each member's world rank, compared with the listed members.
void expect_members(Communicator& group, const std::vector<int>& members, int world_rank) {
  ASSERT_EQ(group.size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[group.rank()], world_rank);
  auto x = at::full({1}, static_cast<int64_t>(world_rank), at::kLong);
  auto all = at::empty({group.size()}, at::kLong);
  group.all_gather(x, all);
  for (int i = 0; i < group.size(); ++i) EXPECT_EQ(all[i].item<int64_t>(), members[i]);
}

TEST(Mesh, EveryFactorisationHasTheRightGroups) {
  const int n = world().size(), me = world().rank();
  for (int sp = 1; sp <= n; ++sp) {
    if (n % sp) continue;
    SCOPED_TRACE("sp=" + std::to_string(sp));
    auto mesh = ProcessMesh::create(runtime().world(), n / sp, sp);
    EXPECT_EQ(mesh.dp(), n / sp);
    EXPECT_EQ(mesh.sp(), sp);
    // One host here: sp groups are runs of consecutive world ranks.
    EXPECT_EQ(mesh.dp_rank(), me / sp);
    EXPECT_EQ(mesh.sp_rank(), me % sp);
    std::vector<int> sp_want, dp_want;
    for (int s = 0; s < sp; ++s) sp_want.push_back(mesh.dp_rank() * sp + s);
    for (int d = 0; d < n / sp; ++d) dp_want.push_back(d * sp + mesh.sp_rank());
    EXPECT_EQ(mesh.sp_members(), sp_want);
    EXPECT_EQ(mesh.dp_members(), dp_want);
    expect_members(mesh.sp_group(), sp_want, me);
    expect_members(mesh.dp_group(), dp_want, me);
    EXPECT_EQ(&mesh.axis("sp"), &mesh.sp_group());
    EXPECT_THROW(mesh.axis("tp"), std::invalid_argument);
  }
}

TEST(Mesh, CollectivesOnTwoGroupsInterleaveIndependently) {
  const int n = world().size(), me = world().rank();
  const int sp = n % 2 == 0 ? 2 : 1;
  auto mesh = ProcessMesh::create(runtime().world(), n / sp, sp);
  auto on_sp = at::full({4099}, static_cast<float>(me));
  auto on_dp = at::full({4099}, static_cast<float>(me));
  // Ranks issue the two groups' calls in opposite orders: only independent groups finish.
  WorkPtr a, b;
  if (me % 2 == 0) {
    a = mesh.sp_group().all_reduce_async(on_sp);
    b = mesh.dp_group().all_reduce_async(on_dp);
  } else {
    b = mesh.dp_group().all_reduce_async(on_dp);
    a = mesh.sp_group().all_reduce_async(on_sp);
  }
  b->wait();
  a->wait();
  float sp_sum = 0, dp_sum = 0;
  for (int r : mesh.sp_members()) sp_sum += r;
  for (int r : mesh.dp_members()) dp_sum += r;
  EXPECT_TRUE(on_sp.eq(sp_sum).all().item<bool>());
  EXPECT_TRUE(on_dp.eq(dp_sum).all().item<bool>());
}

TEST(Mesh, PlacementKeepsHostsTogether) {
  EXPECT_EQ(placement_order({"a", "b", "a", "b"}), (std::vector<int>{0, 2, 1, 3}));
  EXPECT_EQ(placement_order({"x", "x", "y"}), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(placement_order({"b", "a", "b", "a", "c"}), (std::vector<int>{0, 2, 1, 3, 4}));
}

TEST(Mesh, DegreesThatDoNotMultiplyToTheWorldAreRejected) {
  const int n = world().size();
  try {
    ProcessMesh::create(runtime().world(), n, 2);
    FAIL() << "dp*sp != world accepted";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("dp=" + std::to_string(n)), std::string::npos) << msg;
    EXPECT_NE(msg.find("sp=2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("world size " + std::to_string(n)), std::string::npos) << msg;
  }
  EXPECT_THROW(ProcessMesh::create(runtime().world(), -1, n), std::invalid_argument);
  EXPECT_THROW(ProcessMesh::create(runtime().world(), n, 0), std::invalid_argument);
  // dp 0 is resolved by the mesh: the world over sp, or refused when sp does not divide it.
  EXPECT_EQ(ProcessMesh::create(runtime().world(), 0, n).dp(), 1);
  EXPECT_THROW(ProcessMesh::create(runtime().world(), MeshConfig{0, n + 1, 0}), std::invalid_argument);
}

// The mesh's rules, which reel plan asks of a layout without its ranks.
TEST(Mesh, DegreeRulesNameWhatIsWrong) {
  EXPECT_EQ(mesh_degrees_error(8, 4, 2, 8, 2), "");
  EXPECT_NE(mesh_degrees_error(8, 3, 2, 8).find("dp=3 x sequence parallel degree sp=2 = 6 must equal the world size 8"),
            std::string::npos);
  EXPECT_NE(mesh_degrees_error(8, 8, 1, 3).find("HSDP shard group of 3 ranks must divide the world size 8"),
            std::string::npos);
  EXPECT_NE(mesh_degrees_error(8, 2, 4, 8, 3).find("Ulysses degree 3 must divide"), std::string::npos);
  MeshConfig m;
  m.sp = 2;
  EXPECT_EQ(m.dp_for(8), 4);
  EXPECT_EQ(m.dp_for(7), 0);  // refused by the rules above
  EXPECT_EQ(m.shard_ranks(8, 4), 8);
  m.shard_group = ShardGroup::kNode;
  EXPECT_EQ(m.shard_ranks(8, 4), 4);
  m.shard_group = 2;
  EXPECT_EQ(m.shard_ranks(8, 4), 2);
}

}  // namespace
}  // namespace reel::test
