#include "reel/dist/watchdog.hpp"

#include "reel/dist/node_monitor.hpp"

#include <mpi.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace reel {
namespace {

using Clock = std::chrono::steady_clock;

struct Issued {
  uint64_t seq;
  std::string comm, op, detail;
  std::chrono::system_clock::time_point at;
};

// A communicator as the dump lists it: its last collective, and its members when known.
struct CommInfo {
  Issued last;
  std::vector<int> members;  // world ranks in group-rank order; empty: not told
};

struct State {
  std::mutex mutex;
  std::chrono::seconds timeout{0};
  int rank = 0, world_size = 0;  // world size 0: unknown (MPI not running at start)
  std::string host, dump_dir;
  std::map<const void*, uint64_t> next_seq;                               // per communicator
  std::map<const void*, CommInfo> comms;                                  // per communicator, in pointer order
  std::deque<Issued> history;                                             // the most recent collectives
  std::map<uint64_t, std::pair<std::string, Clock::time_point>> blocked;  // id -> (what, since)
  uint64_t next_id = 0;
  bool started = false;
  int slow_phases = 0;
  bool fired = false;
  std::function<void(const std::string&)> on_hang;
  uint64_t fingerprint_count = 0, fingerprint_hash = 0;
  std::string last;
};

State& state() {
  static State* s = new State;  // never destroyed: the checking thread outlives main's statics
  return *s;
}

constexpr size_t kHistory = 32;

std::string stamp(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", std::gmtime(&secs));
  std::ostringstream out;
  out << buf << "." << (ms % 1000 < 100 ? "0" : "") << (ms % 1000 < 10 ? "0" : "") << ms % 1000 << "Z";
  return out.str();
}

std::string date_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&secs));
  return buf;
}

// The dump's text. `reel hang` (dist/hang_report.cpp) reads it back: change both together
// (tests/dist/test_hang_report.cpp reads this writer's output).
std::string dump_locked(State& s) {
  std::ostringstream out;
  const auto now = Clock::now();
  out << "rank " << s.rank << " (" << s.host << "): blocked in communication for longer than " << s.timeout.count()
      << " s (dist.timeout)\n";
  out << "  world size " << s.world_size << "; dumped at " << date_time(std::chrono::system_clock::now()) << "\n";
  for (const auto& [id, b] : s.blocked) {
    out << "  waiting " << std::chrono::duration_cast<std::chrono::seconds>(now - b.second).count() << " s in "
        << b.first << "\n";
  }
  // Per communicator, beyond the history's window: a rank whose number lags never issued the rest.
  out << "  last collective issued on each communicator:\n";
  for (const auto& [comm, c] : s.comms) {
    if (c.last.comm.empty()) continue;  // told its members, issued nothing yet
    out << "    " << c.last.comm << " #" << c.last.seq << " " << c.last.op << "  " << c.last.detail;
    if (!c.members.empty()) {
      out << "  (world ranks ";
      for (size_t i = 0; i < c.members.size(); ++i) out << (i ? "," : "") << c.members[i];
      out << ")";
    }
    out << "\n";
  }
  out << "  recent collectives of this rank (oldest first):\n";
  for (const auto& i : s.history) {
    out << "    " << stamp(i.at) << "  #" << i.seq << " " << i.op << " on " << i.comm << "  " << i.detail << "\n";
  }
  return out.str();
}

void fire(State& s, std::string text) {
  // Which nodes still answer: a lost node explains a hang that the sequence numbers
  // alone would blame on the ranks stuck waiting for it.
  const std::string unreachable = NodeMonitor::probe_all();
  if (!unreachable.empty()) text += "neighbour nodes that do not answer (the likely cause):\n" + unreachable;
  std::cerr << "reel: hang detected on rank " << s.rank << " (" << s.host << ")\n" << text << std::flush;
  if (!s.dump_dir.empty()) {
    std::ofstream(s.dump_dir + "/hang_rank" + std::to_string(s.rank) + ".txt") << text;
    std::cerr << "reel: dump written to " << s.dump_dir << "/hang_rank" << s.rank << ".txt; compare the ranks' "
              << "sequence numbers: those that lag (or wrote no dump) are the ones that stopped\n"
              << std::flush;
  }
  std::function<void(const std::string&)> handler;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    handler = s.on_hang;
  }
  if (handler) handler(text);
}

void watch() {
  State& s = state();
  auto last = Clock::now();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::string text;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto now = Clock::now();
      if (now - last > std::chrono::seconds(5)) {  // the process was suspended: restart every clock
        for (auto& entry : s.blocked) entry.second.second = now;
      }
      last = now;
      if (s.timeout.count() == 0 || s.slow_phases > 0 || s.fired) continue;
      for (const auto& [id, b] : s.blocked) {
        if (now - b.second > s.timeout) {
          text = dump_locked(s);
          s.fired = true;  // one dump per process
          break;
        }
      }
    }
    if (!text.empty()) fire(s, text);
  }
}

}  // namespace

void Watchdog::start(std::chrono::seconds timeout, int world_rank, const std::string& host) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.timeout = timeout;
  s.rank = world_rank;
  s.host = host;
  // Here, on the thread that started MPI: the dump says how many ranks should have dumped.
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &s.world_size);
  if (!s.started && timeout.count() > 0) {
    s.started = true;
    std::thread(watch).detach();  // lives as long as the process
  }
}

void Watchdog::set_hang_handler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().on_hang = std::move(handler);
}

void Watchdog::set_members(const void* comm, std::vector<int> world_ranks) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().comms[comm].members = std::move(world_ranks);
}

void Watchdog::set_dump_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().dump_dir = dir;
}

std::chrono::seconds Watchdog::timeout() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().timeout;
}

uint64_t Watchdog::issued(const void* comm, const std::string& comm_label, const std::string& op,
                          const std::string& detail, uint64_t signature) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  const uint64_t seq = s.next_seq[comm]++;
  if (signature != 0) {  // FNV-style fold: order matters, as it should
    s.fingerprint_hash = (s.fingerprint_hash ^ signature) * 0x100000001b3ull;
    ++s.fingerprint_count;
    s.last = op + " #" + std::to_string(seq) + " on " + comm_label + " " + detail;
  }
  s.history.push_back({seq, comm_label, op, detail, std::chrono::system_clock::now()});
  if (s.history.size() > kHistory) s.history.pop_front();
  s.comms[comm].last = s.history.back();
  return seq;
}

Watchdog::Blocked::Blocked(std::string what) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  id_ = s.next_id++;
  s.blocked.emplace(id_, std::make_pair(std::move(what), Clock::now()));
}

Watchdog::Blocked::~Blocked() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.blocked.erase(id_);
}

Watchdog::Fingerprint Watchdog::fingerprint() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return {state().fingerprint_count, state().fingerprint_hash, state().last};
}

Watchdog::SlowPhase::SlowPhase() {
  std::lock_guard<std::mutex> lock(state().mutex);
  ++state().slow_phases;
}

Watchdog::SlowPhase::~SlowPhase() {
  std::lock_guard<std::mutex> lock(state().mutex);
  State& s = state();
  --s.slow_phases;
  const auto now = Clock::now();
  for (auto& entry : s.blocked) entry.second.second = std::max(entry.second.second, now);  // timed from here
}

std::string Watchdog::dump() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return dump_locked(state());
}

}  // namespace reel
