// The recorder: per-thread event buffers, spans, collectives. The Session (writing the
// files, aligning the clocks) is in trace_session.cpp.
#include "reel/dist/trace.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <vector>

#ifdef REEL_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

#include "reel/dist/require.hpp"
#include "reel/dist/trace_buffer.hpp"

namespace reel {
namespace trace {
namespace detail {

std::atomic<bool> recording{false};
std::atomic<int64_t> skew_ns{0};
std::atomic<int64_t> current_step{0};

Registry& registry() {
  static Registry r;
  return r;
}

// The calling thread's buffer, registered on its first event. Buffers are never freed
// (a thread that ends leaves its events for the writer), so the pointer stays valid.
ThreadBuffer& buffer() {
  thread_local ThreadBuffer* mine = nullptr;
  if (!mine) {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.buffers.push_back(std::make_unique<ThreadBuffer>());
    mine = r.buffers.back().get();
    mine->tid = static_cast<int>(r.buffers.size());
  }
  return *mine;
}

}  // namespace detail

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
             .count() +
         detail::skew_ns.load(std::memory_order_relaxed);
}

void record(const char* name, const char* cat, int64_t start_ns, int64_t end_ns, std::string args) {
  auto& b = detail::buffer();
  // The lock is the writer's (Session::stop reads the buffers); uncontended while recording.
  std::lock_guard<std::mutex> lock(b.mutex);
  b.events.push_back(
      {name, cat, start_ns, end_ns - start_ns, detail::current_step.load(std::memory_order_relaxed), std::move(args)});
}

void name_thread(const char* name) {
  auto& b = detail::buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  b.name = name;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

void ScopedSpan::begin(const char* name, const char* cat) {
  name_ = name;
  cat_ = cat;
  start_ = now_ns();
#ifdef REEL_HAVE_CUDA
  nvtxRangePushA(name);
#endif
}

void ScopedSpan::end() {
#ifdef REEL_HAVE_CUDA
  nvtxRangePop();
#endif
  record(name_, cat_, start_, now_ns(), std::move(args_));
}

void ScopedSpan::add(const char* key, const std::string& value) {
  if (!args_.empty()) args_ += ',';
  args_ += quote(key) + ":" + quote(value);
}

void ScopedSpan::add(const char* key, int64_t value) {
  if (!args_.empty()) args_ += ',';
  args_ += quote(key) + ":" + std::to_string(value);
}

namespace {
// The collective the caller's thread is issuing: set by Communicator::count (or its
// equivalent for calls it does not count), taken by the backend a few calls later on the
// same thread (a communicator is used from one thread at a time).
thread_local CollectivePtr pending;
}  // namespace

void issue(const void* owner, const char* op, const std::string& comm, const std::string& what, int64_t bytes) {
  if (!on()) {
    if (pending) pending.reset();  // one issued before tracing stopped and never launched
    return;
  }
  pending = std::make_shared<Collective>(Collective{owner, op, comm, what, bytes, now_ns()});
}

CollectivePtr take(const void* owner) {
  if (!pending || pending->owner != owner) return nullptr;  // the common case when off: one load
  return std::move(pending);
}

CollectiveSpan::CollectiveSpan(CollectivePtr c) : c_(std::move(c)) {
  if (!c_) return;
  start_ = now_ns();
#ifdef REEL_HAVE_CUDA
  nvtxRangePushA(c_->op);
#endif
}

CollectiveSpan::~CollectiveSpan() {
  if (!c_) return;
#ifdef REEL_HAVE_CUDA
  nvtxRangePop();
#endif
  const int64_t end = now_ns();
  std::string args =
      "\"comm\":" + quote(c_->comm) + ",\"bytes\":" + std::to_string(c_->bytes) + ",\"what\":" + quote(c_->what);
  auto& b = detail::buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  b.events.push_back({c_->op, "comm", start_, end - start_, detail::current_step.load(std::memory_order_relaxed),
                      std::move(args), c_->issued_ns});
}

StepRange parse_steps(const std::string& text) {
  StepRange r;
  if (text.empty()) return r;
  const auto need = [&](bool ok, const std::string& why) {
    require(ok,
            "log.trace '" + text + "': " + why +
                " (expected STEP or FIRST-LAST, 1-based steps as metrics.jsonl counts them, e.g. 20-22; empty: off)");
  };
  long long a = 0, b = 0;
  int used = 0;
  const bool one = std::sscanf(text.c_str(), "%lld%n", &a, &used) == 1 && used == static_cast<int>(text.size());
  used = 0;
  const bool two =
      !one && std::sscanf(text.c_str(), "%lld-%lld%n", &a, &b, &used) == 2 && used == static_cast<int>(text.size());
  need(one || two, "not a step or a range");
  if (one) b = a;
  need(a >= 1, "steps start at 1");
  need(b >= a, "the last step is before the first");
  r.first = a;
  r.last = b;
  return r;
}

}  // namespace trace
}  // namespace reel
