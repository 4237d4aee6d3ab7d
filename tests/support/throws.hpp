// The message of the exception of type E that f() throws; a test failure (and "") when it
// throws nothing. Another exception type propagates and fails the test with its message.
//   const auto what = thrown<std::invalid_argument>([&] { Trainer t(c, world); });
//   EXPECT_NE(what.find("names the file"), std::string::npos) << what;
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace reel::test {

template <typename E, typename F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "nothing was thrown";
  return "";
}

}  // namespace reel::test
