#include "reel/dist/abort_registry.hpp"

#include <vector>

namespace reel {

AbortRegistry& AbortRegistry::process() {
  static AbortRegistry registry;  // lives until exit: communicators unregister in their dtors
  return registry;
}

uint64_t AbortRegistry::add(std::function<std::string()> abort_comm) {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t id = next_id_++;
  if (!reason_.empty()) {
    abort_comm();  // fired already: this communicator never runs a collective
    return id;
  }
  entries_.emplace(id, std::move(abort_comm));
  return id;
}

void AbortRegistry::remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.erase(id);
}

std::vector<std::string> AbortRegistry::abort_all(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reason_.empty()) reason_ = reason.empty() ? "aborted" : reason;
  std::vector<std::string> aborted;
  for (auto& [id, abort_comm] : entries_) aborted.push_back(abort_comm());
  entries_.clear();  // each abort runs once
  return aborted;
}

std::string AbortRegistry::reason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reason_;
}

void AbortRegistry::rearm() {
  std::lock_guard<std::mutex> lock(mutex_);
  reason_.clear();
}

}  // namespace reel
