// `reel hang`'s analysis (dist/hang_report.hpp) on synthetic dumps written in the
// watchdog's format — a rank that never entered, a missing dump, two groups, a stale
// dump — and on the watchdog's own dump text, so that writer and reader stay one format.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reel/dist/hang_report.hpp"
#include "reel/dist/watchdog.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

using hang::analyse;
using hang::Dump;
using hang::parse_dump;
using Ranks = std::vector<int>;

// One dump as dist/watchdog.cpp writes it: waits ("waiting N s in ..." lines), the last
// collective per communicator ("world #20 all_reduce  Float [4]"), the recent history.
std::string dump_text(int rank, int world, const std::vector<std::string>& waits, const std::vector<std::string>& comms,
                      const std::string& at = "2026-12-06T10:00:00Z") {
  std::string t = "rank " + std::to_string(rank) + " (node" + std::to_string(rank / 2) +
                  "): blocked in communication for longer than 5 s (dist.timeout)\n";
  t += "  world size " + std::to_string(world) + "; dumped at " + at + "\n";
  for (const auto& w : waits) t += "  waiting 6 s in " + w + "\n";
  t += "  last collective issued on each communicator:\n";
  for (const auto& c : comms) t += "    " + c + "\n";
  t += "  recent collectives of this rank (oldest first):\n";
  t += "    10:00:00.000Z  #1 all_gather on shard  Float [8]\n";
  return t;
}

Dump parsed(int rank, int world, const std::vector<std::string>& waits, const std::vector<std::string>& comms,
            const std::string& at = "2026-12-06T10:00:00Z") {
  return parse_dump(dump_text(rank, world, waits, comms, at), "hang_rank" + std::to_string(rank) + ".txt");
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(HangReport, ARankThatIssuedAheadIsHeldByTheEarliestCall) {
  // 4 ranks: ranks 1, 2 wait in the world's all-reduce #290; rank 0 issued #290..#294
  // asynchronously and waits on its newest; rank 3 was stopped before #290. One call
  // holds the job, rank 0 entered it, and no cycle is claimed.
  const auto r = analyse({parsed(0, 4, {"all_reduce #294 on world (4 ranks, this rank 0) Double [3]"},
                                 {"world #294 all_reduce  Double [3]"}),
                          parsed(1, 4, {"all_reduce #290 on world (4 ranks, this rank 1) Double [3]"},
                                 {"world #290 all_reduce  Double [3]"}),
                          parsed(2, 4, {"all_reduce #290 on world (4 ranks, this rank 2) Double [3]"},
                                 {"world #290 all_reduce  Double [3]"})});
  ASSERT_EQ(r.stuck.size(), 1u) << hang::to_text(r);
  EXPECT_EQ(r.stuck[0].call.name(), "all_reduce #290 on world");
  EXPECT_EQ(r.stuck[0].entered, (Ranks{0, 1, 2}));
  EXPECT_EQ(r.stuck[0].never_entered, Ranks{3});
  EXPECT_EQ(r.likely_cause, Ranks{3});
  const std::string text = hang::to_text(r);
  EXPECT_FALSE(mentions(text, "cycle")) << text;
  EXPECT_TRUE(mentions(text, "rank 0 waits in all_reduce #294 on world, issued after all_reduce #290 on world"))
      << text;
}

TEST(HangReport, AMissingDumpIsTheLikelyCause) {
  // 2 ranks, FSDP: rank 0 waits in the shard group's all-gather; rank 1 was stopped.
  const auto r = analyse({parsed(0, 2, {"all_gather #57 on shard (2 ranks, this rank 0) Float [4, 1024]"},
                                 {"world #3 all_reduce  Float [3]", "shard #57 all_gather  Float [4, 1024]"})});
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.no_dump, Ranks{1});
  ASSERT_EQ(r.stuck.size(), 1u);
  const auto& s = r.stuck[0];
  EXPECT_EQ(s.call.name(), "all_gather #57 on shard");
  EXPECT_EQ(s.call.bytes, 4 * 4 * 1024);
  EXPECT_TRUE(s.group_known);  // a group of the world's size is the world
  EXPECT_EQ(s.entered, Ranks{0});
  EXPECT_EQ(s.never_entered, Ranks{1});
  EXPECT_EQ(r.likely_cause, Ranks{1});
  const std::string text = hang::to_text(r);
  EXPECT_TRUE(mentions(text, "stuck in: all_gather #57 on shard (2 ranks), 16384 bytes")) << text;
  EXPECT_TRUE(mentions(text, "rank 1: no dump")) << text;
  EXPECT_TRUE(mentions(text, "likely cause: rank 1")) << text;
  EXPECT_TRUE(mentions(hang::to_json(r), "\"likely_cause\": [\n    1\n  ]")) << hang::to_json(r);
}

TEST(HangReport, ARankThatNeverEnteredIsShownWhereItWaits) {
  // 3 ranks, all dumped: ranks 0 and 1 block in the world's all_reduce #20 (MPI's blocking
  // form: resolved to the last call issued on world); rank 2 issued only up to #19 and
  // waits in the ring's sendrecv #5, which every rank entered: the transport is stuck.
  const std::string blocking = "a blocking collective on world (the last op issued is in the history)";
  const std::vector<std::string> ahead = {"world #20 all_reduce  Float [4]", "ring #5 sendrecv  Float [16]"};
  const auto r = analyse({parsed(0, 3, {blocking}, ahead), parsed(1, 3, {blocking}, ahead),
                          parsed(2, 3, {"sendrecv #5 on ring (3 ranks, this rank 2) Float [16]"},
                                 {"world #19 broadcast  Float [2]", "ring #5 sendrecv  Float [16]"})});
  EXPECT_TRUE(r.no_dump.empty());
  ASSERT_EQ(r.stuck.size(), 2u);
  EXPECT_EQ(r.stuck[0].call.name(), "all_reduce #20 on world");
  EXPECT_EQ(r.stuck[0].waiting, (Ranks{0, 1}));
  EXPECT_EQ(r.stuck[0].never_entered, Ranks{2});
  EXPECT_EQ(r.stuck[0].last_before.at(2).name(), "broadcast #19 on world");  // what rank 2 did last there
  EXPECT_EQ(r.stuck[1].call.name(), "sendrecv #5 on ring");
  EXPECT_TRUE(r.stuck[1].never_entered.empty());
  EXPECT_TRUE(r.likely_cause.empty());
  EXPECT_TRUE(mentions(r.ranks[2].doing, "waits 6 s in sendrecv #5 on ring")) << r.ranks[2].doing;
  EXPECT_TRUE(mentions(r.explanation,
                       "which rank 2 never entered: rank 2 waits in sendrecv #5 on ring, which every "
                       "rank of its group entered"))
      << r.explanation;
}

// dp=2 x sp=2, sp groups {0,1} and {2,3}: rank 3 stopped before the sp all-to-all #57;
// rank 2 waits in it; ranks 0 and 1 went on (their group's #57 done) to the world's
// reduce-scatter #120, which neither 2 nor 3 reached.
std::vector<Dump> two_groups(bool members) {
  const std::string sp2 = members ? "  (world ranks 2,3)" : "";
  const std::string sp0 = members ? "  (world ranks 0,1)" : "";
  const std::string rs = "reduce_scatter #120 on world (4 ranks, this rank ";
  return {parsed(0, 4, {rs + "0) Float [256]"},
                 {"world #120 reduce_scatter  Float [256]", "sp #60 all_to_all  Float [8]" + sp0}),
          parsed(1, 4, {rs + "1) Float [256]"},
                 {"world #120 reduce_scatter  Float [256]", "sp #60 all_to_all  Float [8]" + sp0}),
          parsed(2, 4, {"all_to_all #57 on sp (2 ranks, this rank 0) Float [8]"},
                 {"world #119 all_gather  Float [256]", "sp #57 all_to_all  Float [8]" + sp2})};
}

TEST(HangReport, TwoGroupsChainToTheStoppedRank) {
  const auto r = analyse(two_groups(true));
  ASSERT_EQ(r.stuck.size(), 2u);
  EXPECT_EQ(r.stuck[0].call.name(), "reduce_scatter #120 on world");
  EXPECT_EQ(r.stuck[0].entered, (Ranks{0, 1}));
  EXPECT_EQ(r.stuck[0].never_entered, (Ranks{2, 3}));
  EXPECT_EQ(r.stuck[1].call.name(), "all_to_all #57 on sp");
  EXPECT_TRUE(r.stuck[1].group_known);
  EXPECT_EQ(r.stuck[1].entered, Ranks{2});
  EXPECT_EQ(r.stuck[1].never_entered, Ranks{3});
  EXPECT_EQ(r.likely_cause, Ranks{3});
  EXPECT_EQ(r.explanation,
            "ranks 0,1 wait in reduce_scatter #120 on world, which ranks 2,3 never entered: rank 2 waits in "
            "all_to_all #57 on sp, which rank 3 never entered: rank 3 wrote no dump: it died or was stopped — the "
            "likely cause");
}

TEST(HangReport, TwoGroupsWithoutMembersNameTheRanksBehind) {
  // Without the members, the sp group of rank 2 is unknown: ranks 0 and 1 are past #57
  // (their own group's), so only rank 3 (no dump) can be the one rank 2 waits for.
  const auto r = analyse(two_groups(false));
  ASSERT_EQ(r.stuck.size(), 2u);
  EXPECT_FALSE(r.stuck[1].group_known);
  EXPECT_EQ(r.stuck[1].never_entered, Ranks{3});
  EXPECT_EQ(r.likely_cause, Ranks{3});
  EXPECT_TRUE(mentions(hang::to_text(r), "never entered (group unknown: the ranks behind on sp)")) << hang::to_text(r);
}

TEST(HangReport, AWaitInAGroupOfOneIsBlamedOnTheCallItIsQueuedBehind) {
  // HSDP with shard groups of 1: the shard's reduce-scatter #63 waits in the queue it
  // shares with the replicate group's all-reduce #28, which rank 1 never entered.
  std::string text = dump_text(0, 2, {"reduce_scatter #63 on shard (1 ranks, this rank 0) Float [8]"},
                               {"shard #63 reduce_scatter  Float [8]", "replicate #28 all_reduce  Float [8]"});
  text +=
      "    10:00:01.000Z  #28 all_reduce on replicate  Float [8]\n"
      "    10:00:01.001Z  #63 reduce_scatter on shard  Float [8]\n";
  const auto r = analyse({parse_dump(text, "hang_rank0.txt")});
  ASSERT_EQ(r.stuck.size(), 1u);
  EXPECT_EQ(r.stuck[0].call.name(), "all_reduce #28 on replicate");
  EXPECT_EQ(r.stuck[0].never_entered, Ranks{1});
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(mentions(r.notes[0], "queued behind its all_reduce #28 on replicate")) << r.notes[0];
}

TEST(HangReport, AnEarlierHangsDumpIsLeftOut) {
  const std::vector<std::string> comms = {"world #9 all_reduce  Float [1]"};
  const auto r = analyse({parsed(0, 2, {"all_reduce #9 on world (2 ranks, this rank 0) Float [1]"}, comms),
                          parsed(1, 2, {"all_reduce #4 on world (2 ranks, this rank 1) Float [1]"},
                                 {"world #4 all_reduce  Float [1]"}, "2026-12-06T08:00:00Z")});
  EXPECT_EQ(r.dumped, Ranks{0});
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_TRUE(mentions(r.notes[0], "an earlier hang's, left out")) << r.notes[0];
}

TEST(HangReport, TextThatIsNoDumpIsRefusedNamingTheFile) {
  try {
    parse_dump("hello\n", "/run/hang_rank0.txt");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(mentions(e.what(), "/run/hang_rank0.txt: not a reel hang dump")) << e.what();
  }
}

TEST(HangReport, ReadsTheWatchdogsOwnDump) {
  // The writer's text, not a copy of its format: a collective on this process's world,
  // its members, and a described wait.
  auto& w = world();
  if (w.size() != 1)
    GTEST_SKIP() << "reads the dump of a 1-rank world (registered at 1 rank only; at " << w.size()
                 << " ranks the members differ)";
  Watchdog::set_members(&w, {0});
  auto t = at::ones({2, 3});
  w.all_reduce(t);
  Watchdog::Blocked blocked("all_gather #7 on world (1 ranks, this rank 0) Float [2, 3]");
  const Dump d = parse_dump(Watchdog::dump(), "dump");
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_FALSE(d.dumped_at.empty());
  ASSERT_EQ(d.waits.size(), 1u);
  EXPECT_EQ(d.waits[0].call.name(), "all_gather #7 on world");
  EXPECT_EQ(d.waits[0].call.bytes, 24);
  EXPECT_EQ(d.waits[0].group_size, 1);
  ASSERT_FALSE(d.last_issued.empty());
  EXPECT_EQ(d.last_issued.back().comm, "world");
  EXPECT_EQ(d.last_issued.back().op, "all_reduce");
  EXPECT_EQ(d.members.at("world"), Ranks{0});
  ASSERT_FALSE(d.recent.empty());
  EXPECT_EQ(d.recent.back().name(), d.last_issued.back().name());
  EXPECT_EQ(d.recent.back().bytes, 24);
}

}  // namespace
}  // namespace reel::test
