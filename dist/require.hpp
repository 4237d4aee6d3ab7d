// One validation helper for every folder: require(ok, message) throws
// std::invalid_argument(message) unless ok, and Require does the same after a prefix
// naming the owner of the checks. Every library validates its own values with it.
//
// Why here: dist/ heads the layout (CONTRIBUTING.md), so every folder may include its
// headers; and this one is header-only and includes nothing of reel, so that model/,
// which links no other reel library (model/CMakeLists.txt), may use it without gaining a
// link dependency.
#pragma once

#include <stdexcept>
#include <string>

namespace reel {

inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// One owner's checks, each message after the owner's prefix:
//   const Require need{"optimizer: "};
//   need(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1)");   // "optimizer: beta1 must be ..."
struct Require {
  std::string prefix;
  void operator()(bool ok, const std::string& message) const {
    if (!ok) throw std::invalid_argument(prefix + message);
  }
};

}  // namespace reel
