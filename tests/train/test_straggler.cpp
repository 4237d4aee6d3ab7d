// The straggler verdict (train/straggler.hpp: find_stragglers): the slow rank is named by
// its own time (compute + data wait), never by its communication wait; the ranks that
// waited for it are its victims, not stragglers.
#include <gtest/gtest.h>

#include <vector>

#include "reel/train/straggler.hpp"

namespace reel {
namespace {

// A synchronous window of 4 ranks, 10 steps of 100 ms compute each, where `slow` computes
// `extra_s` more: the others wait that long in communication, the slow rank does not.
std::vector<PhaseSums> synchronous(int slow, double extra_s) {
  std::vector<PhaseSums> ranks(4, PhaseSums{1.0, 0.2, 0.01});
  for (int r = 0; r < 4; ++r) {
    if (r == slow) {
      ranks[r].compute_s += extra_s;
    } else {
      ranks[r].comm_s += extra_s;
    }
  }
  return ranks;
}

TEST(Straggler, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
}

TEST(Straggler, ASlowComputeRankIsNamedAndItsVictimsAreNot) {
  const auto found = find_stragglers(synchronous(2, 0.4), 0.2);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].rank, 2);
  EXPECT_EQ(found[0].phase, "compute");
  EXPECT_NEAR(found[0].excess, 0.4 / 1.01, 1e-12);  // over the median busy time, 1.01 s
  EXPECT_NEAR(found[0].extra_s, 0.4, 1e-12);
  EXPECT_EQ(found[0].victims, (std::vector<int>{0, 1, 3}));
}

TEST(Straggler, CommunicationWaitAloneNamesNobody) {
  // Rank 0 waited 2 s more than the others in communication and computed a little less:
  // a victim (of something outside the window's ranks), never the slow one.
  auto ranks = synchronous(-1, 0);
  ranks[0].comm_s += 2.0;
  ranks[0].compute_s -= 0.1;
  EXPECT_TRUE(find_stragglers(ranks, 0.2).empty());
}

TEST(Straggler, NoiseWithinTheThresholdNamesNobody) {
  const std::vector<PhaseSums> ranks = {{1.00, 0.30, 0.01}, {1.15, 0.12, 0.02}, {0.93, 0.41, 0.01}, {1.05, 0.22, 0.03}};
  EXPECT_TRUE(find_stragglers(ranks, 0.2).empty());
  // The same noise at a threshold below it: rank 1 (1.17 s against a median of 1.045 s, 12%).
  const auto found = find_stragglers(ranks, 0.1);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].rank, 1);
}

TEST(Straggler, ADataWaitStragglerIsNamedInData) {
  auto ranks = synchronous(-1, 0);
  ranks[1].data_s += 0.5;  // its loader is late: the others wait for it in communication
  for (int r : {0, 2, 3}) ranks[r].comm_s += 0.5;
  const auto found = find_stragglers(ranks, 0.2);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].rank, 1);
  EXPECT_EQ(found[0].phase, "data");
  EXPECT_EQ(found[0].victims, (std::vector<int>{0, 2, 3}));
}

TEST(Straggler, SeveralStragglersLargestFirstNeitherTheOthersVictim) {
  std::vector<PhaseSums> ranks(5, PhaseSums{1.0, 0.9, 0});
  ranks[1] = {1.3, 0.6, 0};  // 30% slow: waits 0.3 s for rank 4
  ranks[4] = {1.9, 0.0, 0};  // 90% slow
  const auto found = find_stragglers(ranks, 0.2);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].rank, 4);
  EXPECT_EQ(found[1].rank, 1);
  EXPECT_EQ(found[0].victims, (std::vector<int>{0, 2, 3}));  // rank 1 is named, not a victim
}

TEST(Straggler, NothingMeasuredIsNoVerdict) {
  EXPECT_TRUE(find_stragglers(std::vector<PhaseSums>(4), 0.2).empty());
  EXPECT_TRUE(find_stragglers({}, 0.2).empty());
}

TEST(Straggler, BadOptionsAreRefusedByName) {
  StragglerConfig c;
  c.every = -1;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.every = 10;
  c.threshold = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace reel
