// The hang watchdog: no rank waits forever in communication.
//
// Every collective a Communicator issues is numbered (per communicator) and kept in a
// short history; every thread blocked in communication (a blocking collective, or
// Work::wait) registers while it blocks. A thread checks once a second: when one wait
// has lasted longer than the timeout, this rank writes a dump — the world size, what it
// waits for, the last collective issued on each communicator, and its recent collectives
// (op, communicator, sequence number, shapes, dtype, start) — to stderr and to
// DIR/hang_rank<R>.txt, and calls the hang handler the launcher installed (reel's ends
// the whole job after a short grace for the other ranks' dumps; library code never ends
// the process itself: without a handler the dump is all that happens). `reel hang DIR`
// reads every rank's dump and names the stuck collective and the ranks it waits for
// (dist/hang_report.hpp); by hand: compare the dumps' sequence numbers, the ranks whose
// numbers lag (or that wrote none) are the ones to look at. A process suspended and
// resumed (scontrol suspend) restarts its clocks instead of firing. A rank that
// dies is the launcher's to notice (mpirun, srun --kill-on-bad-exit); one that stops or
// hangs is noticed here, on every live rank.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace reel {

class Watchdog {
 public:
  // Starts the checking thread (once per process; later calls update the settings).
  // timeout 0 turns it off.
  static void start(std::chrono::seconds timeout, int world_rank, const std::string& host);
  // Called once, on the watchdog's thread, after the dump is written (the dump's text).
  static void set_hang_handler(std::function<void(const std::string&)> handler);
  // Where dumps go besides stderr (empty: stderr only). Thread-safe.
  static void set_dump_dir(const std::string& dir);
  static std::chrono::seconds timeout();
  // The world ranks of a communicator's group, in group-rank order, for the dump: `reel
  // hang` then knows which ranks a sub-communicator's collective waits for (without it,
  // only the world's, and a blocked wait's group size, are known).
  static void set_members(const void* comm, std::vector<int> world_ranks);

  // Records an issued collective; returns its sequence number on that communicator.
  // signature: what every rank of the job must agree on for this call (op, dtype, size,
  // communicator size), folded into this process's fingerprint; 0 leaves it out (point
  // to point, or calls whose sizes differ by design).
  static uint64_t issued(const void* comm, const std::string& comm_label, const std::string& op,
                         const std::string& detail, uint64_t signature);

  // Desync detection: every rank issues the same sequence of collectives (up to the
  // excluded ones), so the count and the running hash of their signatures agree across
  // ranks at the same point of the program. last: this rank's last collective.
  struct Fingerprint {
    uint64_t count = 0, hash = 0;
    std::string last;
  };
  static Fingerprint fingerprint();

  // While alive, this thread is blocked in `what` (e.g. "all_reduce #12 on world (2 ranks)").
  class Blocked {
   public:
    explicit Blocked(std::string what);
    ~Blocked();
    Blocked(const Blocked&) = delete;
    Blocked& operator=(const Blocked&) = delete;

   private:
    uint64_t id_;
  };

  // While alive, this rank is in a phase whose collectives wait on file I/O of uneven
  // length (checkpoint writes and loads, the weights file): the timeout does not apply.
  class SlowPhase {
   public:
    SlowPhase();
    ~SlowPhase();
    SlowPhase(const SlowPhase&) = delete;
    SlowPhase& operator=(const SlowPhase&) = delete;
  };

  // The dump text for tests: this rank's blocked waits and recent collectives.
  static std::string dump();
};

}  // namespace reel
