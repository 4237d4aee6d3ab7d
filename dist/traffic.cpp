#include "dist/traffic.hpp"

#include <memory>
#include <mutex>

namespace reel {
namespace traffic {
namespace {
std::mutex& lock() {
  static std::mutex m;
  return m;
}
// Never shrinks: the counters' addresses stay valid for the life of the process.
std::map<std::string, std::unique_ptr<std::atomic<int64_t>>>& counters() {
  static std::map<std::string, std::unique_ptr<std::atomic<int64_t>>> c;
  return c;
}
}  // namespace

std::atomic<int64_t>* counter(const std::string& label, const std::string& op) {
  std::lock_guard<std::mutex> guard(lock());
  auto& slot = counters()[label + "." + op];
  if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
  return slot.get();
}

Counts snapshot() {
  std::lock_guard<std::mutex> guard(lock());
  Counts out;
  for (const auto& [key, value] : counters()) {
    const int64_t bytes = value->load(std::memory_order_relaxed);
    if (bytes != 0) out[key] = bytes;
  }
  return out;
}

Counts since(const Counts& before, const Counts& after) {
  Counts out;
  for (const auto& [key, bytes] : after) {
    const auto it = before.find(key);
    const int64_t d = bytes - (it == before.end() ? 0 : it->second);
    if (d != 0) out[key] = d;
  }
  return out;
}

}  // namespace traffic
}  // namespace reel
