// trace::Session: switching the recorder on for the traced steps, the common clock, and
// the files (dist/trace.hpp).
#include <ATen/ATen.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "reel/dist/agreement.hpp"
#include "reel/dist/communicator.hpp"
#include "reel/dist/trace.hpp"
#include "reel/dist/trace_buffer.hpp"
#include "reel/dist/traffic.hpp"

namespace reel {
namespace trace {

struct Session::Traffic {
  traffic::Counts before, during;
};

namespace {

constexpr int kPingPongs = 8;  // rounds per rank; the one with the shortest round trip wins

std::string host_name() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown host";
  return name;
}

// ns as microseconds with 3 decimals (the format's unit, without losing the ns).
std::string micros(int64_t ns) {
  const bool negative = ns < 0;
  const int64_t a = negative ? -ns : ns;
  return (negative ? "-" : "") + std::to_string(a / 1000) + "." + std::to_string(1000 + a % 1000).substr(1);
}

// Moves every thread's events out of the recorder (recording is off).
std::vector<std::pair<detail::ThreadBuffer*, std::vector<detail::Event>>> take_events() {
  std::vector<std::pair<detail::ThreadBuffer*, std::vector<detail::Event>>> out;
  auto& r = detail::registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (auto& b : r.buffers) {
    std::lock_guard<std::mutex> inner(b->mutex);
    if (b->events.empty()) continue;
    out.emplace_back(b.get(), std::move(b->events));
    b->events.clear();
  }
  return out;
}

// This rank's events as Trace Event Format objects (comma-separated, no brackets): its
// track's and threads' names first, then the spans on the common clock (shift: local ns
// to microseconds since the origin).
std::string events_json(int rank, const std::string& host, int64_t shift_ns) {
  const std::string pid = std::to_string(rank);
  std::string out = "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + pid +
                    ",\"tid\":0,\"args\":{\"name\":" + quote("rank " + pid + " (" + host + ")") +
                    "}},{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + pid +
                    ",\"tid\":0,\"args\":{\"sort_index\":" + pid + "}}";
  for (auto& [buffer, events] : take_events()) {
    const std::string tid = std::to_string(buffer->tid);
    const std::string thread = buffer->name ? buffer->name : "thread " + tid;
    out += ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":" + tid +
           ",\"args\":{\"name\":" + quote(thread) + "}}";
    for (const auto& e : events) {
      std::string args = "\"step\":" + std::to_string(e.step);
      if (!e.args.empty()) args += "," + e.args;
      if (e.issued_ns >= 0) args += ",\"issued_us\":" + micros(e.issued_ns + shift_ns);
      out += ",{\"name\":" + quote(e.name) + ",\"cat\":" + quote(e.cat) +
             ",\"ph\":\"X\",\"ts\":" + micros(e.start_ns + shift_ns) + ",\"dur\":" + micros(e.dur_ns) +
             ",\"pid\":" + pid + ",\"tid\":" + tid + ",\"args\":{" + args + "}}";
    }
  }
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);  // a reader never sees half a trace
}

struct MergeTooLarge : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Collective over comm: every rank's text at rank 0 (rank order; empty elsewhere). Throws
// MergeTooLarge on every rank alike when the texts are too large to merge.
std::vector<std::string> gather_at_root(Communicator& comm, const std::string& text) {
  const auto dev = comm.device();
  auto size = at::full({1}, static_cast<int64_t>(text.size()), at::TensorOptions(at::kLong).device(dev));
  auto sizes = at::empty({comm.size()}, size.options());
  comm.all_gather(size, sizes);
  const auto host_sizes = sizes.cpu();
  std::vector<std::string> out;
  // Every rank sees the same sizes: a merge that rank 0 could not hold (one rank's text past
  // what one message carries, or all of them past kMaxMerged) is skipped by every rank
  // alike, before any send, so no rank is left waiting; the per-rank files stay.
  constexpr int64_t kMaxMerged = int64_t(1) << 30;
  const int64_t total = host_sizes.sum().item<int64_t>(), largest = host_sizes.max().item<int64_t>();
  if (total > kMaxMerged || largest > std::numeric_limits<int>::max()) {
    throw MergeTooLarge("the ranks' traces hold " + std::to_string(total) + " bytes, more than the merged file's " +
                        std::to_string(kMaxMerged) +
                        ": each rank's file is written, not trace.json (trace fewer steps)");
  }
  if (comm.rank() != 0) {
    if (!text.empty()) {
      auto bytes = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
      std::memcpy(bytes.data_ptr(), text.data(), text.size());
      comm.send(bytes.to(dev), 0, /*tag=*/7);
    }
    return out;
  }
  out.push_back(text);
  for (int r = 1; r < comm.size(); ++r) {
    const int64_t n = host_sizes[r].item<int64_t>();
    if (n == 0) {
      out.emplace_back();
      continue;
    }
    auto bytes = at::empty({n}, at::TensorOptions(at::kByte).device(dev));
    comm.recv(bytes, r, /*tag=*/7);
    const auto host = bytes.cpu();
    out.emplace_back(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()), n);
  }
  return out;
}

}  // namespace

Session::Session(StepRange steps, Communicator& world, std::string dir)
    : steps_(steps), world_(world), dir_(std::move(dir)), traffic_(std::make_unique<Traffic>()) {}

Session::~Session() { detail::recording = false; }

// Each rank r > 0 in turn sends its clock t1 to rank 0, which answers with its own t0 at
// once; back at r at t2, rank 0's clock read t0 at about (t1 + t2) / 2 here, within
// (t2 - t1) / 2. The shortest of kPingPongs round trips gives the estimate. Blocking
// point-to-point calls with synchronize(): the time is read when the data has arrived
// (on NCCL too). Rank 0 serves the ranks in order; the others wait their turn.
void Session::align_clock() {
  const auto opts = at::TensorOptions(at::kLong).device(world_.device());
  auto buf = at::zeros({1}, opts);
  if (world_.rank() == 0) {
    for (int r = 1; r < world_.size(); ++r) {
      for (int k = 0; k < kPingPongs; ++k) {
        world_.recv_async(buf, r, /*tag=*/5)->synchronize();
        buf.fill_(now_ns());
        world_.send_async(buf, r, /*tag=*/6)->synchronize();
      }
    }
    return;
  }
  int64_t best = std::numeric_limits<int64_t>::max();
  for (int k = 0; k < kPingPongs; ++k) {
    const int64_t t1 = now_ns();
    buf.fill_(t1);
    world_.send_async(buf, 0, /*tag=*/5)->synchronize();
    world_.recv_async(buf, 0, /*tag=*/6)->synchronize();
    const int64_t t0 = buf.cpu().item<int64_t>();
    const int64_t t2 = now_ns();
    if (t2 - t1 >= best) continue;
    best = t2 - t1;
    offset_ns_ = t0 - (t1 + t2) / 2;
    uncertainty_ns_ = (t2 - t1 + 1) / 2;
  }
}

void Session::start() {
  // Test hook: REEL_TRACE_TEST_SKEW_US=N moves rank R's clock by R x N us, a skew that the
  // alignment has to remove (the ranks of one host share one steady clock otherwise).
  if (const char* skew = std::getenv("REEL_TRACE_TEST_SKEW_US")) {
    detail::skew_ns = std::atoll(skew) * 1000LL * world_.rank();
  }
  align_clock();
  // The origin (ts 0): rank 0's clock now, on every rank.
  auto origin = at::full({1}, now_ns(), at::TensorOptions(at::kLong).device(world_.device()));
  world_.broadcast(origin, 0);
  origin_ns_ = origin.cpu().item<int64_t>();
  take_events();  // nothing recorded before this run's traced steps is written
  traffic_->before = traffic::snapshot();
  name_thread("main");
  detail::recording = true;
}

void Session::at_step(int64_t step) {
  if (done_) return;
  const bool traced = steps_.contains(step);
  if (!started_ && !traced) return;
  const bool first = !started_;
  if (first) {
    start();
    started_ = true;
  }
  if (open_step_ >= 0) {
    record("train.step", "train", step_start_, now_ns(), "");
    open_step_ = -1;
  }
  if (!traced) {
    stop();
    return;
  }
  detail::current_step = step;
  open_step_ = step;
  step_start_ = now_ns();
  // Traced, once: every rank leaves it at one instant, which shows the clocks' alignment.
  if (first) world_.barrier();
}

void Session::finish() {
  if (!started_ || done_) return;
  if (open_step_ >= 0) record("train.step", "train", step_start_, now_ns(), "");
  open_step_ = -1;
  stop();
}

void Session::stop() {
  detail::recording = false;
  done_ = true;
  traffic_->during = traffic::since(traffic_->before, traffic::snapshot());
  const std::string host = host_name();
  const int rank = world_.rank();
  const int64_t shift = offset_ns_ - origin_ns_;
  const std::string events = events_json(rank, host, shift);
  std::string traffic = "{";
  for (const auto& [key, bytes] : traffic_->during) {
    traffic += (traffic.size() > 1 ? "," : "") + quote(key) + ":" + std::to_string(bytes);
  }
  traffic += "}";
  const std::string meta =
      "{\"rank\":" + std::to_string(rank) + ",\"host\":" + quote(host) + ",\"clock_offset_us\":" + micros(offset_ns_) +
      ",\"clock_uncertainty_us\":" + micros(uncertainty_ns_) + ",\"traffic_bytes\":" + traffic + "}";
  const std::string steps = "\"steps\":[" + std::to_string(steps_.first) + "," + std::to_string(steps_.last) + "]";
  const std::string clock =
      "\"clock\":\"each rank's steady clock plus its offset to rank 0's (the best of " + std::to_string(kPingPongs) +
      " ping-pongs with rank 0, midpoint estimate; uncertainty: half that round trip); ts 0: rank 0's clock at the "
      "start\"";
  std::string error;
  try {
    std::filesystem::create_directories(dir_);
    write_text(
        dir_ + "/rank" + std::to_string(rank) + ".json",
        "{\"traceEvents\":[" + events + "],\"metadata\":{" + steps + "," + clock + ",\"ranks\":[" + meta + "]}}\n");
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Rank 0 merges: a shared filesystem is not assumed (the ranks' texts travel).
  std::vector<std::string> all_events, all_meta;
  try {
    all_events = gather_at_root(world_, events);
    all_meta = gather_at_root(world_, meta);
  } catch (const MergeTooLarge& e) {
    if (error.empty()) error = e.what();
  }
  if (rank == 0 && !all_events.empty()) {
    std::string merged = "{\"traceEvents\":[", metas;
    for (size_t r = 0; r < all_events.size(); ++r) {
      merged += (r ? "," : "") + all_events[r];
      metas += (r ? "," : "") + all_meta[r];
    }
    merged += "],\"metadata\":{" + steps + "," + clock + ",\"ranks\":[" + metas + "]}}\n";
    try {
      write_text(dir_ + "/trace.json", merged);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // Every rank learns whether every file was written: all throw, or none does.
  if (!any_rank(world_, !error.empty())) return;
  throw std::runtime_error("writing the trace (log.trace) to " + dir_ + " failed" +
                           (error.empty() ? std::string(" on another rank") : ": " + error));
}

}  // namespace trace
}  // namespace reel
