// `reel hang RUN_DIR`: every live rank's hang dump (dist/watchdog.hpp writes
// RUN_DIR/hang_rank<R>.txt when a wait passes dist.timeout) read back and put together:
// the collective the job is stuck in, the ranks that entered it, the ranks that never did
// and what each of those was doing (blocked elsewhere, or no dump: dead or stopped), and
// the chain of waits across communicators that leads to the likely cause.
//
// How "entered" is decided: collectives are numbered per communicator, and every group
// of an axis issues the same sequence (SPMD), so a rank whose last issued number on the
// communicator is >= the stuck call's has entered it, one whose number is lower never
// did. Which ranks form the group: the dump's member list where the mesh told the
// watchdog (Watchdog::set_members); the world's are all ranks; a wait whose group size is
// the world size spans all ranks; otherwise the group is unknown and every rank that is
// behind on that axis (or wrote no dump) is a candidate, said so in the output.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace reel::hang {

// One collective as a dump names it.
struct Call {
  std::string comm;    // the communicator's label: "world", "sp", "shard", ...
  std::string op;      // "all_gather", "all_to_all", ...; empty: unknown
  std::string detail;  // this rank's tensor as the call noted it: "Float [4, 1024]"
  int64_t seq = -1;    // per-communicator sequence number; -1: unknown
  int64_t bytes = -1;  // of that tensor, from detail's dtype and shape; -1: unknown
  // "all_gather #57 on shard"
  std::string name() const;
};

// What one rank's dump says.
struct Dump {
  std::string file;
  int rank = -1;
  std::string host;
  int world_size = 0;     // 0: the dump does not say (written by an older reel)
  std::string dumped_at;  // "2026-12-06T10:01:02Z"; empty: not said
  struct Wait {
    Call call;  // seq -1 for "a blocking collective on C": resolved by analyse()
    int64_t seconds = 0;
    int group_size = 0;  // "(2 ranks, this rank 1)"; 0: not said
    std::string text;    // as written
  };
  std::vector<Wait> waits;
  std::vector<Call> last_issued;                    // per communicator
  std::map<std::string, std::vector<int>> members;  // world ranks by communicator label, where told
  std::vector<Call> recent;                         // oldest first
  std::vector<std::string> notes;                   // "neighbour nodes that do not answer" and its lines

  // The last call this rank issued on `comm` (its summary, else its history); seq -1: none seen.
  Call last_on(const std::string& comm) const;
};

// Parses one dump's text; throws std::runtime_error naming `file` when it is not a dump.
Dump parse_dump(const std::string& text, const std::string& file);
// Every DIR/hang_rank<R>.txt, by rank; empty when there are none (or DIR does not exist).
std::vector<Dump> read_dumps(const std::string& dir);

// One collective some ranks are blocked in.
struct Stuck {
  Call call;
  std::vector<int> waiting;         // blocked in it
  std::vector<int> entered;         // issued it (the waiting ones and those blocked elsewhere after it)
  std::vector<int> never_entered;   // of its group (or, group unknown, the candidates)
  std::map<int, Call> last_before;  // never-entered ranks with a dump: their last call on this communicator
  bool group_known = false;
  int group_size = 0;    // 0: unknown
  int64_t waited_s = 0;  // the longest wait in it
};

// One rank as the report sees it.
struct RankState {
  int rank = -1;
  bool dumped = false;
  std::string host;
  int stuck = -1;     // index into Report::stuck of the collective it waits in; -1: none
  std::string doing;  // "waits 6 s in all_to_all #57 on sp" or "no dump: ..."
};

struct Report {
  int world_size = 0;
  std::string world_size_from;  // "the dumps" or what was assumed
  std::vector<int> dumped, no_dump;
  std::vector<std::string> files;
  // [0] the job's: the one the most ranks wait in; then those its missing ranks wait in.
  std::vector<Stuck> stuck;
  std::vector<RankState> ranks;  // by rank
  std::vector<int> likely_cause;
  std::string explanation;  // one sentence: the chain of waits to the likely cause
  std::vector<std::string> notes;
};

// Puts the dumps together (at least one). Dumps written more than 10 minutes before the
// newest are left out (an earlier hang in the same run directory), with a note.
Report analyse(std::vector<Dump> dumps);
// A few lines for a person.
std::string to_text(const Report& report);
namespace detail {                                      // shared by the analysis and its output
std::string join(const std::vector<int>& ranks);        // "0,1,3"
std::string ranks_word(const std::vector<int>& ranks);  // "rank 3" or "ranks 0,1"
bool contains(const std::vector<int>& v, int x);
}  // namespace detail
// The same as JSON (one object), for tools.
std::string to_json(const Report& report);

}  // namespace reel::hang
