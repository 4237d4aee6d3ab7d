// Aborting every communicator of a process on one fault.
//
// A NCCL fault (an asynchronous error, a timeout) leaves the process's other NCCL
// communicators with kernels that may spin forever on a dead peer, and destroying such a
// communicator (ncclCommDestroy) can hang too. So every communicator whose backend can be
// aborted registers how; the first fault aborts all of them (ncclCommAbort each), and
// every later call on any of them throws with that first reason. The launcher also aborts
// them before it ends the job (an error on this rank, a hang), so no kernel outlives it.
//
// Thread-safe. An abort function runs at most once, never after remove() returned for it,
// and never concurrently with remove() for it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace reel {

class AbortRegistry {
 public:
  // The process's registry (the one communicators use).
  static AbortRegistry& process();

  // Registers a communicator: `abort_comm` aborts it and returns its name (for the
  // report). Returns the id for remove(). Once the registry has fired, it runs at once (a
  // communicator made after a fault must not start collectives with peers that may be
  // gone).
  uint64_t add(std::function<std::string()> abort_comm);
  // Unregisters (the communicator is being destroyed normally).
  void remove(uint64_t id);
  // Runs every registered abort that has not run yet; the first call's reason is kept.
  // Returns the labels of the communicators aborted by this call.
  std::vector<std::string> abort_all(const std::string& reason);
  // Why the registry fired; empty while it has not.
  std::string reason() const;
  // Forgets that it fired (tests that fire the process's registry on purpose).
  void rearm();

 private:
  mutable std::mutex mutex_;  // held while aborts run: remove() waits for a running abort
  std::map<uint64_t, std::function<std::string()>> entries_;
  uint64_t next_id_ = 1;
  std::string reason_;
};

}  // namespace reel
