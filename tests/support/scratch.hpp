// A test binary's scratch directory, removed when every test has run (every rank first
// finishes with it; rank 0 removes it).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/test_env.hpp"

namespace reel::test {

class RemoveAtEnd : public ::testing::Environment {
 public:
  using Dir = const std::string& (*)();
  explicit RemoveAtEnd(Dir dir) : dir_(dir) {}
  void TearDown() override {
    world().barrier();
    if (world().rank() == 0) std::filesystem::remove_all(dir_());
  }

 private:
  Dir dir_;
};

// Registers dir() for removal at the end; use as a namespace-scope initialiser.
inline const ::testing::Environment* remove_at_end(RemoveAtEnd::Dir dir) {
  return ::testing::AddGlobalTestEnvironment(new RemoveAtEnd(dir));
}

}  // namespace reel::test
