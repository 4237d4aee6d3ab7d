#include "reel/dist/traffic.hpp"

#include <memory>
#include <mutex>

namespace reel {
namespace traffic {
namespace {
std::mutex& lock() {
  static std::mutex m;
  return m;
}
using Table = std::map<std::string, std::unique_ptr<std::atomic<int64_t>>>;
// Never shrink: the counters' addresses stay valid for the life of the process.
Table& counters() {
  static Table c;
  return c;
}
Table& internode_counters() {
  static Table c;
  return c;
}

std::atomic<int64_t>* slot_of(Table& table, const std::string& key) {
  std::lock_guard<std::mutex> guard(lock());
  auto& slot = table[key];
  if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
  return slot.get();
}

Counts snapshot_of(const Table& table) {
  std::lock_guard<std::mutex> guard(lock());
  Counts out;
  for (const auto& [key, value] : table) {
    const int64_t bytes = value->load(std::memory_order_relaxed);
    if (bytes != 0) out[key] = bytes;
  }
  return out;
}

}  // namespace

std::atomic<int64_t>* counter(const std::string& label, const std::string& op) {
  return slot_of(counters(), label + "." + op);
}

std::atomic<int64_t>* internode_counter(const std::string& label, const std::string& op) {
  return slot_of(internode_counters(), label + "." + op);
}

Counts snapshot() { return snapshot_of(counters()); }
Counts snapshot_internode() { return snapshot_of(internode_counters()); }

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
