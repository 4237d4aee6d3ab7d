// The CPU peak MFU divides by (train/throughput.hpp): the per-host cache (written, read
// back, measured again for another key, a bad file a warning and never an error), and
// the collective: each rank's share is the host's recorded peak / the ranks on the host,
// and a second call reads what the first recorded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "reel/dist/process_mesh.hpp"
#include "reel/train/throughput.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

namespace fs = std::filesystem;

// A fresh directory for one test on this rank, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("reel_peak_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A measurement that counts its calls.
struct Measure {
  int calls = 0;
  double flops;
  explicit Measure(double f) : flops(f) {}
  std::function<double()> fn() {
    return [this] {
      ++calls;
      return flops;
    };
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool mentions(const std::vector<std::string>& warnings, const std::string& text) {
  for (const auto& w : warnings) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(PeakCache, MeasuresOnceThenReadsBack) {
  TempDir dir;
  const std::string path = (dir.path / "new" / "cpu_peak.ini").string();  // its directory is made
  Measure m(1.25e11);
  const auto first = cached_host_peak(path, "cpu=X; cores=2", 2, m.fn());
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(first.not_recorded.empty()) << first.not_recorded;
  EXPECT_TRUE(first.warnings.empty());
  EXPECT_EQ(first.flops, 1.25e11);
  EXPECT_EQ(first.cores, 2);
  ASSERT_TRUE(fs::exists(path));
  EXPECT_NE(read_all(path).find("[cpu=X; cores=2]"), std::string::npos) << read_all(path);
  m.flops = 9e9;  // a second measurement would read differently: it must not happen
  const auto second = cached_host_peak(path, "cpu=X; cores=2", 2, m.fn());
  EXPECT_EQ(m.calls, 1);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.flops, 1.25e11);
  EXPECT_EQ(second.measured, first.measured);
  EXPECT_EQ(second.cores, 2);
  EXPECT_TRUE(second.warnings.empty());
  // No temporary left behind: the cache, and the lock file its writers flock (kept: removing
  // it would let two writers lock two different files).
  for (const auto& e : fs::directory_iterator(dir.path / "new")) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "cpu_peak.ini" || name == "cpu_peak.ini.lock") << name;
  }
}

TEST(PeakCache, AnotherKeyMeasuresAgainAndKeepsTheFirst) {
  TempDir dir;
  const std::string path = (dir.path / "cpu_peak.ini").string();
  Measure a(1e11), b(2e11);
  cached_host_peak(path, "cpu=X; cores=2; gemm=64x8x8", 2, a.fn());
  const auto other = cached_host_peak(path, "cpu=X; cores=2; gemm=128x8x8", 2, b.fn());
  EXPECT_EQ(b.calls, 1);
  EXPECT_FALSE(other.from_cache);
  EXPECT_EQ(other.flops, 2e11);
  const auto again = cached_host_peak(path, "cpu=X; cores=2; gemm=64x8x8", 2, a.fn());
  EXPECT_EQ(a.calls, 1);
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.flops, 1e11);
}

TEST(PeakCache, AFileThatCannotBeReadIsAWarning) {
  TempDir dir;
  const std::string path = dir.path.string();  // a directory where the file should be
  Measure m(3e10);
  HostPeak h;
  ASSERT_NO_THROW(h = cached_host_peak(path, "k", 1, m.fn()));
  EXPECT_EQ(m.calls, 1);
  EXPECT_EQ(h.flops, 3e10);
  EXPECT_TRUE(mentions(h.warnings, "cannot read")) << ::testing::PrintToString(h.warnings);
  EXPECT_FALSE(h.not_recorded.empty());  // and it cannot be replaced either
}

TEST(PeakCache, AFileThatCannotBeWrittenIsAWarning) {
  TempDir dir;
  std::ofstream(dir.path / "plain") << "a file, not a directory\n";
  const std::string path = (dir.path / "plain" / "cpu_peak.ini").string();
  Measure m(3e10);
  HostPeak h;
  ASSERT_NO_THROW(h = cached_host_peak(path, "k", 1, m.fn()));
  EXPECT_EQ(h.flops, 3e10);
  EXPECT_FALSE(h.from_cache);
  EXPECT_FALSE(h.not_recorded.empty());
  EXPECT_TRUE(mentions(h.warnings, "not recorded")) << ::testing::PrintToString(h.warnings);
}

TEST(PeakCache, BadLinesAndValuesAreWarningsAndRewritten) {
  TempDir dir;
  const auto path = dir.path / "cpu_peak.ini";
  std::ofstream(path) << "not ini at all\n[k]\nflops = -3\nmeasured = 2026-01-01 00:00\n";
  Measure m(4e10);
  const auto h = cached_host_peak(path.string(), "k", 1, m.fn());
  EXPECT_EQ(m.calls, 1);
  EXPECT_EQ(h.flops, 4e10);
  EXPECT_TRUE(mentions(h.warnings, "line 1")) << ::testing::PrintToString(h.warnings);
  EXPECT_TRUE(mentions(h.warnings, "not a positive number")) << ::testing::PrintToString(h.warnings);
  const auto again = cached_host_peak(path.string(), "k", 1, m.fn());
  EXPECT_EQ(m.calls, 1);
  EXPECT_TRUE(again.from_cache);
  EXPECT_TRUE(again.warnings.empty()) << ::testing::PrintToString(again.warnings);
  EXPECT_EQ(read_all(path).find("not ini"), std::string::npos);
}

TEST(PeakCache, KeyNamesWhatDeterminesThePeak) {
  const auto key = cpu_peak_key("Some [CPU] 3.0GHz", 8, at::kBFloat16, {{{512, 128, 384}}, {{512, 512, 128}}});
  EXPECT_EQ(key, "cpu=Some  CPU  3.0GHz; cores=8; dtype=BFloat16; gemm=512x128x384,512x512x128");
  EXPECT_NE(key, cpu_peak_key("Some [CPU] 3.0GHz", 4, at::kBFloat16, {{{512, 128, 384}}, {{512, 512, 128}}}));
}

TEST(PeakCache, PathFromTheEnvironment) {
  std::map<std::string, std::optional<std::string>> saved;  // restored at the end
  for (const char* name : {"REEL_CPU_PEAK_CACHE", "XDG_CACHE_HOME", "HOME"}) {
    const char* v = std::getenv(name);
    saved[name] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  setenv("REEL_CPU_PEAK_CACHE", "/somewhere/peak.ini", 1);
  EXPECT_EQ(cpu_peak_cache_path(), "/somewhere/peak.ini");
  unsetenv("REEL_CPU_PEAK_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(cpu_peak_cache_path(), "/xdg/reel/cpu_peak.ini");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(cpu_peak_cache_path(), "/home/someone/.cache/reel/cpu_peak.ini");
  for (const auto& [name, value] : saved) {
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
}

// Collective: every rank runs this on one host (one node).
TEST(Peak, EachRankGetsTheRecordedHostPeakOverItsRanks) {
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  const int n = world().size();
  auto pid = at::full({1}, int64_t(::getpid()), at::kLong);
  world().broadcast(pid, 0);  // one cache file for the job
  const fs::path path = fs::temp_directory_path() / ("reel_peak_job_" + std::to_string(pid.item<int64_t>()) + ".ini");
  setenv("REEL_CPU_PEAK_CACHE", path.c_str(), 1);
  const auto cfg = model_preset("tiny");
  const auto cpu = at::Device(at::kCPU);
  const auto first = peak_flops(mesh, cfg, 256, at::kFloat, cpu, 0);
  const auto second = peak_flops(mesh, cfg, 256, at::kFloat, cpu, 0);
  unsetenv("REEL_CPU_PEAK_CACHE");
  if (world().rank() == 0) {
    EXPECT_NE(first.source.find("recorded in " + path.string()), std::string::npos) << first.source;
    EXPECT_NE(second.source.find("read from " + path.string()), std::string::npos) << second.source;
    EXPECT_NE(second.source.find("over " + std::to_string(n) + (n == 1 ? " rank," : " ranks,")), std::string::npos)
        << second.source;
    // The file holds the host's figure: each rank's share is it / the ranks here.
    const std::string text = read_all(path);
    const auto at = text.find("flops = ");
    ASSERT_NE(at, std::string::npos) << text;
    const double host = std::stod(text.substr(at + 8));
    EXPECT_NEAR(first.per_rank, host / n, 1e-5 * host);
  }
  EXPECT_GT(first.per_rank, 0);
  EXPECT_EQ(second.per_rank, first.per_rank);  // the same figure, not a new measurement
  EXPECT_NEAR(first.world, first.per_rank * n, 1e-9 * first.world);
  EXPECT_TRUE(first.warnings.empty()) << ::testing::PrintToString(first.warnings);
  world().barrier();
  if (world().rank() == 0) fs::remove(path);
}

TEST(Peak, AStatedPeakWins) {
  auto mesh = ProcessMesh::create(runtime().world(), MeshConfig{});
  const auto p = peak_flops(mesh, model_preset("tiny"), 256, at::kFloat, at::Device(at::kCPU), 5e10);
  EXPECT_EQ(p.per_rank, 5e10);
  EXPECT_EQ(p.world, 5e10 * world().size());
  EXPECT_EQ(p.source, "run.peak_flops");
}

}  // namespace
}  // namespace reel::test
