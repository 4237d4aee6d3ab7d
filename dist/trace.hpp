// Trace: a timeline of every rank, for the steps `--log.trace A-B` names (1-based, as
// metrics.jsonl counts them; "5" is one step; empty: off).
//
// Each rank records spans (name, category, start, duration, step, arguments) from any
// thread into per-thread buffers; a Session (below) switches recording on for the traced
// steps, aligns the ranks' clocks, and writes the Chrome trace / Perfetto JSON ("Trace
// Event Format", complete events "ph":"X", microseconds):
//   RUN_DIR/trace/rank<R>.json  this rank's events (pid R), on the common clock
//   RUN_DIR/trace/trace.json    every rank's, merged by rank 0: a track (pid) per rank,
//                               named "rank R (host)", a thread (tid) per recording thread
// Both carry "metadata": each rank's clock offset to rank 0 and its uncertainty, the
// traced steps, and the bytes the traffic counters (dist/traffic.hpp) counted per
// "label.op" while recording ("traffic_bytes"), which the collective spans' bytes sum to.
// Every span's args also hold "step", the traced step it started in. With CUDA compiled
// in, ScopedSpan and CollectiveSpan are also NVTX ranges (Nsight Systems); the spans
// recorded after the fact (train.step, fsdp.backward, checkpoint.snapshot) are not.
//
// Spans (name: category, arguments; where):
//   train.step          train   step                one traced step, from its start to the next's
//   train.data          data    micro               waiting for the loader's next batch
//   train.backward      train   micro               loss.backward() and FSDP's finish_backward()
//   optim.clip          optim                       the global gradient norm and clipping
//   optim.adamw         optim   shards              AdamW over every flat shard
//   fsdp.forward        fsdp    unit                a unit's forward (root: the whole model's,
//                                                   the blocks' inside it)
//   fsdp.backward       fsdp    unit                a unit's backward: from the re-gather (or its
//                                                   first gradient) to its gradients reduced; a
//                                                   block's ends early when the next one's begins
//   fsdp.recompute      fsdp    block               activation checkpointing's re-run of a block
//   <op>                comm    comm, bytes, what,  a collective ("all_reduce", "all_gather",
//                               issued_us, queued_us "reduce_scatter", "all_to_all(_v)",
//                                                   "broadcast", "send", "recv", "sendrecv",
//                                                   "barrier") on the thread that ran it (MPI: the
//                                                   progress thread, or the caller for a blocking
//                                                   call; NCCL: the caller, enqueueing). ts..end is
//                                                   the backend call; issued_us is when the caller
//                                                   issued it (queued_us = the wait for the thread).
//                                                   bytes: as the traffic counters count it.
//   wait                comm.wait what              Work::wait(): the time the collective "what"
//                                                   exposed to the waiting thread
//   checkpoint.snapshot checkpoint checkpoint_step  copying the shards for a save (main thread)
//   checkpoint.save     checkpoint                  the blocking part of starting a save
//   checkpoint.write    checkpoint                  the rank's file, on the writer thread
//   checkpoint.commit   checkpoint checkpoint_step  rank 0: the manifest and the rename
//
// Cost when off: ScopedSpan's constructor loads one relaxed atomic bool; nothing is
// allocated or locked.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace reel {

class Communicator;

namespace trace {

namespace detail {
extern std::atomic<bool> recording;
}

// Whether spans are being recorded now.
inline bool on() { return detail::recording.load(std::memory_order_relaxed); }
// This rank's steady clock in ns (plus the test skew: Session).
int64_t now_ns();
// Records a finished span [start_ns, end_ns) on the calling thread. args: JSON object
// members without the braces ("\"unit\":\"block3\""), or "".
void record(const char* name, const char* cat, int64_t start_ns, int64_t end_ns, std::string args);
// Names the calling thread's track ("main", "comm progress", "checkpoint writer").
void name_thread(const char* name);
// A JSON string literal of s (quotes added, escaped).
std::string quote(const std::string& s);

// A span over this object's lifetime, recorded when tracing was on at its start.
class ScopedSpan {
 public:
  ScopedSpan(const char* name, const char* cat) {
    if (on()) begin(name, cat);
  }
  ~ScopedSpan() {
    if (start_ >= 0) end();
  }
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;
  bool active() const { return start_ >= 0; }
  // Adds an argument; nothing when not recording.
  ScopedSpan& arg(const char* key, const std::string& value) {
    if (start_ >= 0) add(key, value);
    return *this;
  }
  ScopedSpan& arg(const char* key, int64_t value) {
    if (start_ >= 0) add(key, value);
    return *this;
  }

 private:
  void add(const char* key, const std::string& value);
  void add(const char* key, int64_t value);
  void begin(const char* name, const char* cat);
  void end();
  const char* name_ = nullptr;
  const char* cat_ = nullptr;
  int64_t start_ = -1;
  std::string args_;
};

// A collective as issued (Communicator::count), carried to the thread that runs it.
struct Collective {
  const void* owner;  // the communicator that issued it
  const char* op;     // a literal: "all_reduce", ...
  std::string comm;   // the communicator's label
  std::string what;   // "all_reduce #12 on world (...)", as Work::wait names it
  int64_t bytes;      // what the traffic counters counted (0: nothing)
  int64_t issued_ns;
};
using CollectivePtr = std::shared_ptr<Collective>;
// Caller's thread: the collective being issued now (only while on), and its pick-up by
// the backend of the same communicator (null when none is pending for it).
void issue(const void* owner, const char* op, const std::string& comm, const std::string& what, int64_t bytes);
CollectivePtr take(const void* owner);
// Records the collective's span over its lifetime, on the thread that runs it.
class CollectiveSpan {
 public:
  explicit CollectiveSpan(CollectivePtr c);
  ~CollectiveSpan();
  CollectiveSpan(const CollectiveSpan&) = delete;
  CollectiveSpan& operator=(const CollectiveSpan&) = delete;

 private:
  CollectivePtr c_;
  int64_t start_ = 0;
};

// "A-B" or "A" (1-based steps, 1 <= A <= B), or "" (none); anything else throws
// std::invalid_argument naming log.trace and the expected form.
struct StepRange {
  int64_t first = 0, last = -1;
  bool empty() const { return last < first; }
  bool contains(int64_t step) const { return step >= first && step <= last; }
};
StepRange parse_steps(const std::string& text);

// One run's tracing: the Trainer calls at_step() at the start of every step and finish()
// after the last; both collective over world (every rank, the same step).
class Session {
 public:
  // dir: where rank<R>.json and trace.json go (created by each rank).
  Session(StepRange steps, Communicator& world, std::string dir);
  ~Session();
  // step (1-based) starts. The first traced step: align the clocks with rank 0 (ping-pong,
  // collective), switch recording on, and run one traced barrier (its exit is the same
  // instant on every rank: the test of the alignment). The first step past the range:
  // recording off, then the files are written (collective).
  void at_step(int64_t step);
  // The run ended: writes the files if still recording (a range past run.steps).
  void finish();
  const std::string& dir() const { return dir_; }

 private:
  void start();
  void stop();
  void align_clock();
  StepRange steps_;
  Communicator& world_;
  std::string dir_;
  bool started_ = false, done_ = false;
  int64_t open_step_ = -1, step_start_ = 0;
  int64_t offset_ns_ = 0, uncertainty_ns_ = 0, origin_ns_ = 0;
  struct Traffic;
  std::unique_ptr<Traffic> traffic_;
};

}  // namespace trace
}  // namespace reel
