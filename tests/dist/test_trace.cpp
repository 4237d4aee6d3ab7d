// The tracer (dist/trace.hpp): log.trace's ranges, nothing recorded when off (and what a
// span costs then), and a Session over the world: only the traced steps' collectives,
// each once, with the bytes the traffic counters count.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "reel/dist/trace.hpp"
#include "reel/dist/trace_buffer.hpp"
#include "tests/support/test_env.hpp"

namespace reel {
namespace {

size_t recorded() {
  auto& r = trace::detail::registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t n = 0;
  for (auto& b : r.buffers) n += b->events.size();
  return n;
}

TEST(Trace, ParsesStepRanges) {
  EXPECT_TRUE(trace::parse_steps("").empty());
  const auto one = trace::parse_steps("5");
  EXPECT_EQ(one.first, 5);
  EXPECT_EQ(one.last, 5);
  const auto range = trace::parse_steps("20-22");
  EXPECT_EQ(range.first, 20);
  EXPECT_EQ(range.last, 22);
  EXPECT_TRUE(range.contains(21));
  EXPECT_FALSE(range.contains(23));
  for (const char* bad : {"0", "4-3", "a", "3-", "-3", "3-4x", "3,4"}) {
    EXPECT_THROW(trace::parse_steps(bad), std::invalid_argument) << bad;
  }
  try {
    trace::parse_steps("4-3");
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("log.trace '4-3': the last step is before the first"), std::string::npos);
  }
}

// Off: a span records nothing and allocates nothing; its cost is printed (ns per span) for
// the off-cost estimate (spans per step x this / step time).
TEST(Trace, OffRecordsNothingAndIsCheap) {
  ASSERT_FALSE(trace::on());
  const size_t before = recorded();
  constexpr int kSpans = 5'000'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSpans; ++i) {
    trace::ScopedSpan span("fsdp.forward", "fsdp");
    span.arg("unit", static_cast<int64_t>(i));
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kSpans;
  EXPECT_EQ(recorded(), before);
  std::printf("[trace] a ScopedSpan with an argument costs %.2f ns when tracing is off\n", ns);
  EXPECT_LT(ns, 50.0);  // a relaxed load and a branch; far below this even on a loaded machine
  // What every collective adds when off: Communicator::count's issue, the backend's take.
  const std::string label = "world", what = "all_reduce #1 on world";
  const auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < kSpans; ++i) {
    trace::issue(&label, "all_reduce", label, what, i);
    EXPECT_EQ(trace::take(&label), nullptr);
  }
  const double per_call =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - begin).count() / kSpans;
  EXPECT_EQ(recorded(), before);
  std::printf("[trace] a collective's issue and take cost %.2f ns when tracing is off\n", per_call);
  EXPECT_LT(per_call, 50.0);
}

// Steps 1..4 with range 2-3: an all-reduce and an all-gather per step, and one
// communicator call between steps; the files hold steps 2-3's and nothing else.
TEST(Trace, SessionRecordsOnlyTheTracedSteps) {
  auto& world = test::world();
  const std::string dir = "trace_test_out";
  if (world.rank() == 0) std::filesystem::remove_all(dir);
  world.barrier();
  {
    trace::Session session(trace::parse_steps("2-3"), world, dir);
    for (int64_t step = 1; step <= 4; ++step) {
      session.at_step(step);
      auto t = at::ones({256});
      world.all_reduce(t);
      auto out = at::empty({64 * world.size()});
      world.all_gather_async(at::ones({64}), out)->wait();
    }
    session.finish();  // nothing left: step 4 ended the range
  }
  EXPECT_FALSE(trace::on());
  std::ifstream in(dir + "/rank" + std::to_string(world.rank()) + ".json");
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  int all_reduces = 0, all_gathers = 0, waits = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const int64_t step = e["args"]["step"];
    EXPECT_TRUE(step == 2 || step == 3) << e.dump();
    if (e["name"] == "all_reduce") ++all_reduces;
    if (e["name"] == "all_gather") ++all_gathers;
    if (e["name"] == "wait") ++waits;
  }
  EXPECT_EQ(all_reduces, 2);
  EXPECT_EQ(all_gathers, 2);
  EXPECT_GE(waits, 2);
  if (world.size() > 1) {
    // 2 x 256 floats all-reduced, 2 x 64 all-gathered, as traffic.hpp counts them.
    const auto traffic = j["metadata"]["ranks"][0]["traffic_bytes"];
    const int64_t n = world.size();
    EXPECT_EQ(traffic.value("world.all_reduce", int64_t{0}), 2 * (2 * (n - 1) * 1024 / n));
    EXPECT_EQ(traffic.value("world.all_gather", int64_t{0}), 2 * (n - 1) * 256);
  }
  if (world.rank() == 0) {
    std::ifstream merged(dir + "/trace.json");
    ASSERT_TRUE(merged.good());
    const auto m = nlohmann::json::parse(merged);
    EXPECT_EQ(m["metadata"]["ranks"].size(), static_cast<size_t>(world.size()));
  }
}

}  // namespace
}  // namespace reel
