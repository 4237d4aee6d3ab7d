#include "reel/dist/hang_report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace reel::hang {
namespace {

// Bytes per element of the dtype names c10::toString writes; 0: unknown.
int64_t element_bytes(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"Double", 8}, {"Float", 4}, {"Half", 2}, {"BFloat16", 2}, {"Long", 8},         {"Int", 4},
      {"Short", 2},  {"Char", 1},  {"Byte", 1}, {"Bool", 1},     {"ComplexFloat", 8}, {"ComplexDouble", 16}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// "Float [4, 1024]" -> 16384; -1 when the detail names no tensor.
int64_t bytes_of(const std::string& detail) {
  static const std::regex form(R"(^(\w+) \[([0-9, ]*)\])");
  std::smatch m;
  if (!std::regex_search(detail, m, form) || element_bytes(m[1]) == 0) return -1;
  int64_t n = element_bytes(m[1]);
  std::stringstream dims(m[2].str());
  for (std::string d; std::getline(dims, d, ',');) n *= std::stoll(d);
  return n;
}

Call make_call(std::string comm, std::string op, int64_t seq, std::string detail) {
  Call c{std::move(comm), std::move(op), std::move(detail), seq, -1};
  c.bytes = bytes_of(c.detail);
  return c;
}

std::vector<int> parse_ranks(const std::string& list) {
  std::vector<int> ranks;
  std::stringstream in(list);
  for (std::string r; std::getline(in, r, ',');) ranks.push_back(std::stoi(r));
  return ranks;
}

// "all_gather #57 on shard (2 ranks, this rank 1) Float [4096]" (a Work's description) or
// "a blocking collective on world (the last op issued ...)" (seq resolved later).
Dump::Wait parse_wait(int64_t seconds, const std::string& what) {
  static const std::regex described(R"(^(\S+) #(\d+) on (.+?) \((\d+) ranks?, this rank \d+\)\s*(.*)$)");
  static const std::regex blocking(R"(^a blocking collective on (.+?) \()");
  Dump::Wait w;
  w.seconds = seconds;
  w.text = what;
  std::smatch m;
  if (std::regex_search(what, m, described)) {
    w.call = make_call(m[3], m[1], std::stoll(m[2]), m[5]);
    w.group_size = std::stoi(m[4]);
  } else if (std::regex_search(what, m, blocking)) {
    w.call.comm = m[1];
  }
  return w;
}

}  // namespace

namespace detail {

std::string join(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ",") + std::to_string(r);
  return s;
}

std::string ranks_word(const std::vector<int>& ranks) { return (ranks.size() == 1 ? "rank " : "ranks ") + join(ranks); }

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace detail

namespace {

using detail::contains;
using detail::join;
using detail::ranks_word;

}  // namespace

std::string Call::name() const {
  return (op.empty() ? "a collective" : op) + (seq >= 0 ? " #" + std::to_string(seq) : "") + " on " + comm;
}

Call Dump::last_on(const std::string& comm) const {
  Call last;
  last.comm = comm;
  for (const auto* calls : {&last_issued, &recent}) {
    for (const auto& c : *calls) {
      if (c.comm == comm && c.seq > last.seq) last = c;
    }
  }
  return last;
}

Dump parse_dump(const std::string& text, const std::string& file) {
  static const std::regex header(R"(^rank (\d+) \((.*)\): blocked in communication)");
  static const std::regex world(R"(^  world size (\d+); dumped at (\S+))");
  static const std::regex waiting(R"(^  waiting (\d+) s in (.*)$)");
  static const std::regex summary(R"(^    (.+?) #(\d+) (\S+)  (.*?)(?:  \(world ranks ([0-9,]+)\))?$)");
  static const std::regex history(R"(^    \S+Z  #(\d+) (\S+) on (.+?)  (.*)$)");
  Dump d;
  d.file = file;
  enum { kTop, kSummary, kHistory, kNotes } part = kTop;
  std::istringstream in(text);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (d.rank < 0) {
      if (!std::regex_search(line, m, header)) continue;
      d.rank = std::stoi(m[1]);
      d.host = m[2];
    } else if (line.rfind("  last collective issued on each communicator", 0) == 0) {
      part = kSummary;
    } else if (line.rfind("  recent collectives of this rank", 0) == 0) {
      part = kHistory;
    } else if (line.rfind("neighbour nodes", 0) == 0 || part == kNotes) {
      part = kNotes;
      d.notes.push_back(line);
    } else if (part == kTop && std::regex_search(line, m, world)) {
      d.world_size = std::stoi(m[1]);
      d.dumped_at = m[2];
    } else if (part == kTop && std::regex_search(line, m, waiting)) {
      d.waits.push_back(parse_wait(std::stoll(m[1]), m[2]));
    } else if (part == kSummary && std::regex_search(line, m, summary)) {
      d.last_issued.push_back(make_call(m[1], m[3], std::stoll(m[2]), m[4]));
      if (m[5].matched) d.members[m[1]] = parse_ranks(m[5]);
    } else if (part == kHistory && std::regex_search(line, m, history)) {
      d.recent.push_back(make_call(m[3], m[2], std::stoll(m[1]), m[4]));
    }
  }
  if (d.rank < 0) {
    throw std::runtime_error(file +
                             ": not a reel hang dump (no line 'rank R (host): blocked in communication ...'); "
                             "move it out of the run directory, or restore it");
  }
  return d;
}

std::vector<Dump> read_dumps(const std::string& dir) {
  namespace fs = std::filesystem;
  static const std::regex name(R"(^hang_rank(\d+)\.txt$)");
  std::vector<Dump> dumps;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return dumps;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || !std::regex_match(file, name)) continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    dumps.push_back(parse_dump(text.str(), entry.path().string()));
  }
  std::sort(dumps.begin(), dumps.end(), [](const Dump& a, const Dump& b) { return a.rank < b.rank; });
  return dumps;
}

namespace {

// Seconds since the epoch of "2026-12-06T10:01:02Z"; -1 when not given.
int64_t epoch_seconds(const std::string& at) {
  std::tm tm{};
  std::istringstream in(at);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return in.fail() ? -1 : static_cast<int64_t>(timegm(&tm));
}

// Leaves out dumps much older than the newest: a run directory keeps an earlier hang's.
std::vector<Dump> current(std::vector<Dump> dumps, std::vector<std::string>& notes) {
  int64_t newest = -1;
  for (const auto& d : dumps) newest = std::max(newest, epoch_seconds(d.dumped_at));
  std::vector<Dump> kept;
  for (auto& d : dumps) {
    const int64_t at = epoch_seconds(d.dumped_at);
    if (newest >= 0 && at >= 0 && newest - at > 600) {
      notes.push_back(d.file + " was dumped at " + d.dumped_at + ", " + std::to_string((newest - at) / 60) +
                      " min before the newest: an earlier hang's, left out");
    } else {
      kept.push_back(std::move(d));
    }
  }
  return kept;
}

// The call this rank waits in longest, with "a blocking collective on C" resolved to the
// last collective it issued on C (MPI runs a blocking call inline: that is the one).
bool main_wait(const Dump& d, Dump::Wait& out) {
  bool found = false;
  for (const auto& w : d.waits) {
    Dump::Wait r = w;
    if (r.call.comm.empty()) continue;  // "an asynchronous operation": no communicator named
    if (r.call.seq < 0) {
      for (const auto& c : d.last_issued) {
        if (c.comm == r.call.comm) r.call = c;
      }
      if (r.call.seq < 0) {
        for (const auto& c : d.recent) {
          if (c.comm == r.call.comm) r.call = c;
        }
      }
    }
    if (!found || r.seconds > out.seconds) out = r;
    found = true;
  }
  return found;
}

// A group of one waits for no other rank: its call is queued behind an earlier one of this
// rank's on a communicator that shares its progress (HSDP: shard and replicate). Blames
// the last call issued on another communicator before it, as far as the history shows.
void queued_behind(const Dump& d, Dump::Wait& w, std::vector<std::string>& notes) {
  const auto it = std::find_if(d.recent.rbegin(), d.recent.rend(),
                               [&](const Call& c) { return c.comm == w.call.comm && c.seq == w.call.seq; });
  const auto before = std::find_if(it, d.recent.rend(), [&](const Call& c) { return c.comm != w.call.comm; });
  if (it == d.recent.rend() || before == d.recent.rend()) return;
  notes.push_back("rank " + std::to_string(d.rank) + " waits in " + w.call.name() + ", a group of 1 rank, queued " +
                  "behind its " + before->name() + ": that is the call it waits for");
  w.call = *before;
  w.group_size = 0;
}

// The group of a stuck call: its members where known, else all ranks (group_known false).
std::vector<int> group_of(Stuck& s, const std::map<int, const Dump*>& by_rank, int world) {
  for (int r : s.waiting) {
    const auto it = by_rank.at(r)->members.find(s.call.comm);
    if (it != by_rank.at(r)->members.end()) {
      s.group_known = true;
      s.group_size = static_cast<int>(it->second.size());
      return it->second;
    }
  }
  if (s.call.comm == "world" || s.group_size == world) {
    s.group_known = true;
    s.group_size = world;
  }
  std::vector<int> all(world);
  for (int r = 0; r < world; ++r) all[r] = r;
  return all;
}

// Who of the group entered the stuck call, and who never did.
void classify(Stuck& s, const std::map<int, const Dump*>& by_rank, int world) {
  for (int r : group_of(s, by_rank, world)) {
    if (contains(s.waiting, r)) {
      s.entered.push_back(r);
      continue;
    }
    const auto it = by_rank.find(r);
    const Call last = it == by_rank.end() ? Call{} : it->second->last_on(s.call.comm);
    if (it != by_rank.end() && last.seq >= s.call.seq) {
      if (s.group_known) s.entered.push_back(r);  // else: past it, in another group of the axis
    } else {
      s.never_entered.push_back(r);
      if (it != by_rank.end()) s.last_before[r] = last;
    }
  }
}

}  // namespace

namespace {

// A live rank writes a dump only when its own wait passes dist.timeout within the grace
// after the first dump; one busy elsewhere (computing, in a slow phase) writes none.
constexpr const char* kNoDump =
    "no dump: the rank died or was stopped (a crash, an OOM kill, SIGSTOP, a lost node), "
    "or it was busy, not blocked, until the job ended";

// One communicator's calls complete in order: a rank that waits in #N on C while another
// rank of the same C waits in #M < N (which this rank issued before N, and which has not
// completed) is held by #M — an asynchronous rank issues ahead and waits on its newest
// call. Each wait is moved to the earliest one waited on in its group, and said. Groups
// are told apart by their members (two sp groups share a label, not their numbers); where
// the dumps do not give them, only the world is one group for sure.
void behind_earliest(std::vector<std::pair<const Dump*, Dump::Wait>>& waits, std::vector<std::string>& notes) {
  auto group = [](const Dump& d, const std::string& comm) -> std::string {
    const auto m = d.members.find(comm);
    if (m != d.members.end()) return comm + ":" + join(m->second);
    return comm == "world" ? comm : "";  // "": not comparable with another rank's
  };
  std::map<std::string, Call> earliest;
  for (const auto& [d, w] : waits) {
    const std::string g = group(*d, w.call.comm);
    if (g.empty() || w.call.seq < 0) continue;
    auto it = earliest.find(g);
    if (it == earliest.end() || w.call.seq < it->second.seq) earliest[g] = w.call;
  }
  for (auto& [d, w] : waits) {
    const std::string g = group(*d, w.call.comm);
    const auto it = g.empty() ? earliest.end() : earliest.find(g);
    if (it == earliest.end() || it->second.seq >= w.call.seq) continue;
    notes.push_back("rank " + std::to_string(d->rank) + " waits in " + w.call.name() + ", issued after " +
                    it->second.name() + ", which has not completed: it is held by that one");
    w.call = it->second;
  }
}

// The stuck calls of the ranks' main waits (one per (communicator, number, op)); sets
// each rank's index into them.
std::vector<Stuck> collect(const std::vector<Dump>& dumps, std::map<int, int>& stuck_of, Report& r) {
  std::vector<Stuck> stuck;
  std::map<std::tuple<std::string, int64_t, std::string>, int> index;
  std::map<std::pair<std::string, int64_t>, std::string> op_at;  // a desync: two ops at one number
  std::vector<std::pair<const Dump*, Dump::Wait>> waits;
  for (const auto& d : dumps) {
    Dump::Wait w;
    if (!main_wait(d, w)) continue;
    if (w.group_size == 1) queued_behind(d, w, r.notes);
    waits.emplace_back(&d, w);
  }
  behind_earliest(waits, r.notes);
  for (auto& [dp, w] : waits) {
    const Dump& d = *dp;
    const auto key = std::make_tuple(w.call.comm, w.call.seq, w.call.op);
    if (!index.count(key)) {
      index[key] = static_cast<int>(stuck.size());
      Stuck fresh;
      fresh.call = w.call;
      stuck.push_back(fresh);
    }
    Stuck& s = stuck[index[key]];
    s.waiting.push_back(d.rank);
    s.waited_s = std::max(s.waited_s, w.seconds);
    s.group_size = std::max(s.group_size, w.group_size);
    stuck_of[d.rank] = index[key];
    auto& op = op_at[{w.call.comm, w.call.seq}];
    if (!op.empty() && op != w.call.op) {
      r.notes.push_back("ranks wait in both " + op + " and " + w.call.op + " as #" + std::to_string(w.call.seq) +
                        " on " + w.call.comm +
                        ": they issued different collectives (a desync; --dist.verify "
                        "checks every call and names the first that differs)");
    }
    op = w.call.op;
  }
  return stuck;
}

// The job's call first (the most ranks wait in it; then the world's, then the longest
// wait), then, breadth first, the calls its missing ranks wait in; the rest after.
std::vector<int> order(const std::vector<Stuck>& stuck, const std::map<int, int>& stuck_of) {
  std::vector<int> by_weight(stuck.size());
  for (size_t i = 0; i < stuck.size(); ++i) by_weight[i] = static_cast<int>(i);
  std::stable_sort(by_weight.begin(), by_weight.end(), [&](int a, int b) {
    const Stuck &x = stuck[a], &y = stuck[b];
    if (x.waiting.size() != y.waiting.size()) return x.waiting.size() > y.waiting.size();
    if ((x.call.comm == "world") != (y.call.comm == "world")) return x.call.comm == "world";
    return x.waited_s > y.waited_s;
  });
  std::vector<int> out;
  for (int start : by_weight) {
    if (contains(out, start)) continue;
    out.push_back(start);
    for (size_t k = out.size() - 1; k < out.size(); ++k) {
      for (int q : stuck[out[k]].never_entered) {
        const auto it = stuck_of.find(q);
        if (it != stuck_of.end() && !contains(out, it->second)) out.push_back(it->second);
      }
    }
  }
  return out;
}

// "rank 0 waits in all_gather #57 on shard, which rank 1 never entered: rank 1 wrote no
// dump ..." following the ranks that never entered into the calls they wait in.
std::string explain(const Report& r, int i, std::set<int>& seen, std::set<int>& causes) {
  const Stuck& s = r.stuck[i];
  seen.insert(i);
  std::string out = ranks_word(s.waiting) + (s.waiting.size() == 1 ? " waits" : " wait") + " in " + s.call.name();
  if (s.never_entered.empty()) {
    return out +
           ", which every rank of its group entered: the transport itself is stuck (network, NCCL), or the "
           "ranks passed different sizes";
  }
  out += ", which " + ranks_word(s.never_entered) + " never entered" +
         (s.group_known ? "" : " (its members are not in the dumps: the ranks behind on " + s.call.comm + ")");
  std::vector<int> dead;
  std::map<int, std::vector<int>> waiting_in;  // stuck index -> ranks
  std::vector<std::string> parts;
  for (int q : s.never_entered) {
    const RankState& st = r.ranks[q];
    if (!st.dumped)
      dead.push_back(q);
    else if (st.stuck < 0)
      parts.push_back("rank " + std::to_string(q) + " " + st.doing);
    else
      waiting_in[st.stuck].push_back(q);
  }
  for (const auto& [j, ranks] : waiting_in) {
    if (seen.count(j)) {
      parts.push_back(ranks_word(ranks) + " in turn wait" + (ranks.size() == 1 ? "s" : "") + " in " +
                      r.stuck[j].call.name() + ": a cycle, the ranks issued their collectives in different orders");
    } else {
      parts.push_back(explain(r, j, seen, causes));
    }
  }
  // A rank already named further down the chain (the one the others wait for) is not repeated.
  dead.erase(std::remove_if(dead.begin(), dead.end(), [&](int q) { return causes.count(q) > 0; }), dead.end());
  if (!dead.empty()) {
    parts.push_back(ranks_word(dead) + " wrote no dump: " + (dead.size() == 1 ? "it" : "they") + " died or " +
                    (dead.size() == 1 ? "was" : "were") + " stopped — the likely cause");
    causes.insert(dead.begin(), dead.end());
  }
  for (size_t k = 0; k < parts.size(); ++k) out += (k ? "; " : ": ") + parts[k];
  return out;
}

void describe_ranks(Report& r, const std::map<int, const Dump*>& by_rank, const std::map<int, int>& stuck_of) {
  for (int q = 0; q < r.world_size; ++q) {
    RankState st;
    st.rank = q;
    const auto it = by_rank.find(q);
    st.dumped = it != by_rank.end();
    if (!st.dumped) {
      st.doing = kNoDump;
      r.ranks.push_back(st);
      continue;
    }
    st.host = it->second->host;
    const auto s = stuck_of.find(q);
    if (s != stuck_of.end()) {
      Dump::Wait w;
      main_wait(*it->second, w);
      st.stuck = s->second;
      st.doing = "waits " + std::to_string(w.seconds) + " s in " + r.stuck[s->second].call.name();
    } else {
      st.doing = it->second->waits.empty() ? "wrote a dump without a wait" : "waits in " + it->second->waits[0].text;
    }
    r.ranks.push_back(st);
  }
}

}  // namespace

Report analyse(std::vector<Dump> dumps) {
  Report r;
  dumps = current(std::move(dumps), r.notes);
  std::map<int, const Dump*> by_rank;
  for (const auto& d : dumps) {
    by_rank[d.rank] = &d;
    r.world_size = std::max(r.world_size, d.world_size);
    r.files.push_back(d.file);
  }
  r.world_size_from = "the dumps";
  const int highest = by_rank.empty() ? -1 : by_rank.rbegin()->first;
  if (r.world_size <= highest) {
    r.world_size = highest + 1;
    r.world_size_from = "the highest rank that dumped (the dumps do not say it: an older reel)";
    r.notes.push_back("world size unknown: assumed " + std::to_string(r.world_size) +
                      "; ranks above the highest that dumped are not seen");
  }
  for (int q = 0; q < r.world_size; ++q) (by_rank.count(q) ? r.dumped : r.no_dump).push_back(q);
  std::map<int, int> stuck_of;
  std::vector<Stuck> stuck = collect(dumps, stuck_of, r);
  for (auto& s : stuck) classify(s, by_rank, r.world_size);
  const std::vector<int> ordered = order(stuck, stuck_of);
  std::map<int, int> renumber;
  for (size_t k = 0; k < ordered.size(); ++k) {
    renumber[ordered[k]] = static_cast<int>(k);
    r.stuck.push_back(stuck[ordered[k]]);
  }
  for (auto& [rank, i] : stuck_of) i = renumber[i];
  describe_ranks(r, by_rank, stuck_of);
  std::set<int> seen, causes;
  for (size_t i = 0; i < r.stuck.size(); ++i) {
    if (seen.count(static_cast<int>(i))) continue;
    r.explanation += (r.explanation.empty() ? "" : "; besides, ") + explain(r, static_cast<int>(i), seen, causes);
  }
  r.likely_cause.assign(causes.begin(), causes.end());
  return r;
}

}  // namespace reel::hang
