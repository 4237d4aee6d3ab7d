// The recorder's internals, shared by trace.cpp (recording) and trace_session.cpp
// (writing): one buffer of finished spans per thread that recorded any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace reel {
namespace trace {
namespace detail {

struct Event {
  const char* name;  // literals (or strings that outlive the trace: unit names)
  const char* cat;
  int64_t start_ns, dur_ns;  // this rank's clock (now_ns)
  int64_t step;              // the traced step it started in
  std::string args;          // JSON object members, without braces
  int64_t issued_ns = -1;    // collectives: when the caller issued it (written as args.issued_us)
};

struct ThreadBuffer {
  std::mutex mutex;  // the recording thread appends, the Session's writer takes
  int tid = 0;       // 1, 2, ... in the order threads first recorded
  const char* name = nullptr;
  std::vector<Event> events;
};

struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers;  // never shrinks
};

extern std::atomic<int64_t> skew_ns;       // test hook: added to this rank's clock
extern std::atomic<int64_t> current_step;  // the step events are tagged with
Registry& registry();
ThreadBuffer& buffer();

}  // namespace detail
}  // namespace trace
}  // namespace reel
