#include "reel/train/memory.hpp"

#include <fstream>
#include <string>

namespace reel {
namespace {

int64_t status_bytes(const std::string& which) {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == which) {
      int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

}  // namespace

int64_t resident_bytes() { return status_bytes("VmRSS:"); }
int64_t peak_resident_bytes() { return status_bytes("VmHWM:"); }

bool reset_peak_resident() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5\n";
  clear.flush();
  return static_cast<bool>(clear);
}

}  // namespace reel
