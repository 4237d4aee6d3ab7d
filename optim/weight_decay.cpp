#include "reel/optim/weight_decay.hpp"

namespace reel {

bool decays(const std::string& name, at::IntArrayRef shape) {
  return shape.size() >= 2 && name.find("bias") == std::string::npos && name.find("embed") == std::string::npos;
}

}  // namespace reel
