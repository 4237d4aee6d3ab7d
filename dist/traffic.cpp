#include "dist/traffic.hpp"

#include <mutex>

namespace reel {
namespace traffic {
namespace {
std::mutex& lock() {
  static std::mutex m;
  return m;
}
Counts& counts() {
  static Counts c;
  return c;
}
}  // namespace

void add(const std::string& label, const std::string& op, int64_t bytes) {
  if (bytes <= 0) return;
  std::lock_guard<std::mutex> guard(lock());
  counts()[label + "." + op] += bytes;
}

Counts snapshot() {
  std::lock_guard<std::mutex> guard(lock());
  return counts();
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
