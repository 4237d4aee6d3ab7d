#include "reel/launch/version.hpp"

#include <torch/version.h>

namespace reel {

std::string version_string() {
  std::string s = REEL_VERSION;
  s += " (torch " TORCH_VERSION;
#ifdef REEL_HAVE_CUDA
  s += ", CUDA on";
#else
  s += ", CUDA off";
#endif
#ifdef REEL_HAVE_NCCL
  s += ", NCCL on)";
#else
  s += ", NCCL off)";
#endif
  return s;
}

}  // namespace reel
