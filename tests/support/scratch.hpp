// A test binary's scratch directory, removed when every test has run (every rank first
// finishes with it; rank 0 removes it).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <functional>
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

// A fresh directory temp/<prefix>_<mpirun's pid>, the same on every rank: rank 0 empties
// it and calls make(dir) to fill it while the others wait.
inline std::string shared_scratch(const std::string& prefix, const std::function<void(const std::string&)>& make) {
  const auto d = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getppid()));
  if (world().rank() == 0) {
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    make(d.string());
  }
  world().barrier();
  return d.string();
}

}  // namespace reel::test
