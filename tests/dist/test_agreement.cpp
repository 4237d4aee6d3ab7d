// Cross-rank agreement (dist/agreement.hpp): every rank gets the same answer, whichever
// ranks set their flag or error, and the answer names the right rank. Run at 2 and 4 ranks.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "reel/dist/agreement.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

std::string rank_text(int r) { return "text of rank " + std::to_string(r); }

TEST(Agreement, AnyRankIsTheOrOfEveryRanksFlag) {
  auto& w = world();
  const int r = w.rank(), last = w.size() - 1;
  EXPECT_FALSE(any_rank(w, false));
  EXPECT_TRUE(any_rank(w, true));
  EXPECT_TRUE(any_rank(w, r == 1));
  EXPECT_TRUE(any_rank(w, r == last));
  EXPECT_TRUE(any_rank(w, r == 0));
}

TEST(Agreement, LowestRankNamesTheLowestRankWhoseFlagIsSet) {
  auto& w = world();
  const int r = w.rank(), last = w.size() - 1;
  EXPECT_EQ(lowest_rank(w, false), -1);
  EXPECT_EQ(lowest_rank(w, true), 0);
  EXPECT_EQ(lowest_rank(w, r == 1), 1);
  EXPECT_EQ(lowest_rank(w, r == last), last);
  EXPECT_EQ(lowest_rank(w, r >= 1), 1);
  EXPECT_EQ(lowest_rank(w, r == 0 || r == last), 0);
}

TEST(Agreement, FirstErrorIsEmptyWhenNoRankFailed) { EXPECT_EQ(first_error(world(), ""), ""); }

TEST(Agreement, OneFailingRanksErrorReachesEveryRankNamingIt) {
  auto& w = world();
  const std::string error = "disk full writing rank1.h5";
  const std::string got = first_error(w, w.rank() == 1 ? error : "");
  EXPECT_EQ(got, w.rank() == 1 ? error : error + " (rank 1)");
}

TEST(Agreement, OfSeveralFailingRanksTheLowestWins) {
  auto& w = world();
  const int r = w.rank(), last = w.size() - 1;
  // Ranks 1 and the last fail (at 2 ranks: rank 1 only, which is the last).
  const std::string mine = (r == 1 || r == last) ? "error of rank " + std::to_string(r) : "";
  EXPECT_EQ(first_error(w, mine), r == 1 ? "error of rank 1" : "error of rank 1 (rank 1)");
  // Every rank fails: rank 0's error, plain on rank 0.
  EXPECT_EQ(first_error(w, "error of rank " + std::to_string(r)),
            r == 0 ? "error of rank 0" : "error of rank 0 (rank 0)");
  // Ranks 1.. fail, rank 0 does not: rank 1's.
  EXPECT_EQ(first_error(w, r >= 1 ? "e" + std::to_string(r) : ""), r == 1 ? "e1" : "e1 (rank 1)");
}

TEST(Agreement, ALongErrorArrivesWhole) {
  auto& w = world();
  std::string error(5000, 'x');
  error += " the end";
  EXPECT_EQ(first_error(w, w.rank() == w.size() - 1 ? error : ""),
            w.rank() == w.size() - 1 ? error : error + " (rank " + std::to_string(w.size() - 1) + ")");
}

// Runs throw_if_any_failed; the message it threw, or "(none)".
std::string thrown(const std::string& error, const std::string& what) {
  try {
    throw_if_any_failed(world(), error, what);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(none)";
}

TEST(Agreement, ThrowIfAnyFailedThrowsOnEveryRankOrOnNone) {
  auto& w = world();
  EXPECT_EQ(thrown("", "saving the weights"), "(none)");
  const bool one = w.rank() == 1;
  EXPECT_EQ(
      thrown(one ? "no space" : "", "saving the weights to x.h5"),
      one ? "saving the weights to x.h5 failed: no space" : "saving the weights to x.h5 failed: no space (rank 1)");
  EXPECT_EQ(thrown(one ? "locked by job 7" : "", ""), one ? "locked by job 7" : "locked by job 7 (rank 1)");
  // The communicator is in step afterwards: one more agreement on every rank.
  EXPECT_FALSE(any_rank(w, false));
}

TEST(Agreement, FromRank0GivesRank0sTextToEveryRank) {
  auto& w = world();
  const int r = w.rank(), last = w.size() - 1;
  EXPECT_EQ(from_rank0(w, rank_text(r)), rank_text(0));
  // Rank 0's empty text wins over the others' texts, and the reverse.
  EXPECT_EQ(from_rank0(w, r == 0 ? "" : rank_text(r)), "");
  EXPECT_EQ(from_rank0(w, r == 0 ? rank_text(0) : ""), rank_text(0));
  // Any bytes (a NUL inside), from any root.
  const std::string bytes = std::string("a\0b", 3) + rank_text(r);
  EXPECT_EQ(broadcast_text(w, bytes, last), std::string("a\0b", 3) + rank_text(last));
}

TEST(Agreement, EqualFingerprintsReportNothing) {
  Watchdog::Fingerprint fp;
  fp.count = 41;
  fp.hash = 0x9e3779b97f4a7c15ull;
  fp.last = "all_reduce #12 on world";
  EXPECT_EQ(desync_report(world(), fp), "");
  // The last collective may differ in text without counting as a desync: count and hash decide.
  fp.last = "rank " + std::to_string(world().rank());
  EXPECT_EQ(desync_report(world(), fp), "");
}

TEST(Agreement, FingerprintsThatDifferNameTheirRanksAndLastCollectives) {
  auto& w = world();
  const int r = w.rank(), last = w.size() - 1;
  Watchdog::Fingerprint fp;
  fp.count = 41;
  fp.hash = 1234;
  fp.last = "all_reduce #12 on world";
  // Rank 1 issued one more collective; at 4 ranks the last rank has the same count but
  // another hash (a different collective); rank 2 agrees with rank 0.
  if (r == 1) {
    fp.count = 42;
    fp.hash = 999;
    fp.last = "all_gather #3 on dp";
  }
  if (r == 3) {
    fp.hash = 77;
    fp.last = "broadcast #12 on world";
  }
  std::string want =
      "the ranks that differ from rank 0 (41 collectives, last all_reduce #12 on world):"
      "\n  rank 1: 42 collectives, last all_gather #3 on dp";
  if (last == 3) want += "\n  rank 3: 41 collectives, last broadcast #12 on world";
  want += "\n  the job would hang at the next collective they do not share";
  EXPECT_EQ(desync_report(w, fp), want);
}

TEST(Agreement, JobIsTheWorldAsMpiKnowsIt) {
  EXPECT_TRUE(job_running());
  EXPECT_EQ(job_world_size(), world().size());
  EXPECT_EQ(job_rank(), world().rank());
}

}  // namespace
}  // namespace reel::test
