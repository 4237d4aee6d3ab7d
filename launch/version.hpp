#pragma once

#include <string>

namespace reel {
// "0.1.0 (torch 2.11.0, CUDA on|off, NCCL on|off)".
std::string version_string();
}  // namespace reel
