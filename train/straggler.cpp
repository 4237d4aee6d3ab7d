#include "reel/train/straggler.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "reel/dist/error.hpp"

namespace reel {

void StragglerConfig::validate() const {
  if (every < 0) throw std::invalid_argument("log.straggler_every must be >= 0 steps (0: off)");
  if (!(threshold > 0)) {
    throw std::invalid_argument(
        "log.straggler_threshold must be > 0 (a fraction of the median rank's time, e.g. 0.25)");
  }
}

double median(std::vector<double> xs) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const size_t n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

namespace {

std::vector<int> victims_of(const std::vector<PhaseSums>& ranks, const Straggler& s, const std::vector<bool>& named) {
  std::vector<int> out;
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (named[r]) continue;
    if (ranks[r].comm_s - ranks[s.rank].comm_s >= 0.5 * s.extra_s) out.push_back(static_cast<int>(r));
  }
  return out;
}

}  // namespace

std::vector<Straggler> find_stragglers(const std::vector<PhaseSums>& ranks, double threshold) {
  std::vector<double> busy, compute, data;
  for (const auto& p : ranks) busy.push_back(p.busy()), compute.push_back(p.compute_s), data.push_back(p.data_s);
  const double mid = median(busy);
  std::vector<Straggler> out;
  if (!(mid > 0)) return out;  // nothing measured (or a clock gone wrong): no verdict
  const double mid_compute = median(compute), mid_data = median(data);
  std::vector<bool> named(ranks.size(), false);
  for (size_t r = 0; r < ranks.size(); ++r) {
    const double extra = busy[r] - mid;
    if (extra <= threshold * mid) continue;
    Straggler s;
    s.rank = static_cast<int>(r);
    s.extra_s = extra;
    s.excess = extra / mid;
    // The phase with more seconds over its own median holds most of the extra time.
    s.phase = data[r] - mid_data > compute[r] - mid_compute ? "data" : "compute";
    named[r] = true;
    out.push_back(s);
  }
  for (auto& s : out) s.victims = victims_of(ranks, s, named);
  std::sort(out.begin(), out.end(), [](const Straggler& a, const Straggler& b) { return a.excess > b.excess; });
  return out;
}

namespace {

// Collective over world: every rank's host name, in rank order.
std::vector<std::string> gather_hosts(Communicator& world) {
  constexpr int64_t kBytes = 64;  // host names are at most 64 characters (HOST_NAME_MAX)
  auto mine = at::zeros({kBytes}, at::kByte);
  const auto& host = host_name();
  std::memcpy(mine.data_ptr(), host.data(), std::min<size_t>(host.size(), kBytes - 1));
  auto all = at::empty({kBytes * world.size()}, at::TensorOptions(at::kByte).device(world.device()));
  world.all_gather(mine.to(world.device()), all);
  const auto cpu = all.cpu();
  std::vector<std::string> out;
  const char* bytes = reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>());
  for (int r = 0; r < world.size(); ++r) out.emplace_back(bytes + r * kBytes, strnlen(bytes + r * kBytes, kBytes));
  return out;
}

// "; ranks 0, 1 waited for it (exposed communication)", or "" when none did.
std::string waited(const std::vector<int>& victims) {
  if (victims.empty()) return "";
  std::string s = victims.size() == 1 ? "; rank " : "; ranks ";
  for (size_t i = 0; i < victims.size(); ++i) s += cat(i ? ", " : "", victims[i]);
  return s + " waited for it (exposed communication)";
}

}  // namespace

StragglerWatch::StragglerWatch(const StragglerConfig& config, Communicator& world, const Logger& log)
    : config_(config), world_(world), log_(log) {
  config_.validate();
  if (config_.every > 0 && world_.size() > 1) hosts_ = gather_hosts(world_);
}

nlohmann::json StragglerWatch::after_step(int64_t step, const PhaseSums& times) {
  if (config_.every <= 0 || world_.size() < 2) return nullptr;
  if (window_start_ < 0) window_start_ = step;
  window_.compute_s += times.compute_s;
  window_.comm_s += times.comm_s;
  window_.data_s += times.data_s;
  if (step % config_.every != 0) return nullptr;
  // Synchronisation: every rank ends the window at the same step (the step count is the
  // same on all), so all reach this all-gather together; 24 bytes per rank.
  const int n = world_.size();
  auto opts = at::TensorOptions(at::kDouble);
  auto mine = at::tensor({window_.compute_s, window_.comm_s, window_.data_s}, opts).to(world_.device());
  auto all = at::empty({3 * n}, opts.device(world_.device()));
  world_.all_gather(mine, all);
  const auto cpu = all.cpu();
  const double* v = cpu.data_ptr<double>();
  std::vector<PhaseSums> ranks(n);
  for (int r = 0; r < n; ++r) ranks[r] = PhaseSums{v[3 * r], v[3 * r + 1], v[3 * r + 2]};
  const auto found = find_stragglers(ranks, config_.threshold);
  auto field = report(step, found);
  window_ = PhaseSums{};
  window_start_ = -1;
  return field;
}

nlohmann::json StragglerWatch::report(int64_t step, const std::vector<Straggler>& found) {
  const bool speak = world_.rank() == 0;  // the verdict is the same on every rank: rank 0 says it
  const std::string steps = cat("steps ", window_start_, "-", step);
  std::vector<int> named;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& s : found) {
    named.push_back(s.rank);
    const bool again = std::find(last_named_.begin(), last_named_.end(), s.rank) != last_named_.end();
    if (speak) {
      log_.warn(cat("straggler: rank ", s.rank, " (host ", hosts_[s.rank], ") ", again ? "is still " : "is ",
                    fixed(100 * s.excess, 0), "% slower than the median rank in ", s.phase, " over ", steps, " (+",
                    fixed(s.extra_s, 2), " s)", waited(s.victims), " (log.straggler_threshold ",
                    100 * config_.threshold, "%)"));
    }
    all.push_back({{"rank", s.rank},
                   {"host", hosts_[s.rank]},
                   {"phase", s.phase},
                   {"excess", s.excess},
                   {"extra_s", s.extra_s},
                   {"victims", s.victims},
                   {"since_step", window_start_}});
  }
  for (int r : last_named_) {
    if (speak && std::find(named.begin(), named.end(), r) == named.end()) {
      log_.info(cat("straggler: rank ", r, " is no longer slower than the threshold over ", steps));
    }
  }
  last_named_ = named;
  if (all.empty()) return nullptr;
  if (all.size() == 1) return all[0];
  auto worst = all[0];  // the largest excess first
  worst["others"] = nlohmann::json(all.begin() + 1, all.end());
  return worst;
}

void test_slow_rank_sleep(int world_rank) {
  // Test-only (the straggler tests): never set these in a real run.
  static const int slow_ms = [] {
    const char* rank = std::getenv("REEL_TEST_SLOW_RANK");
    const char* ms = std::getenv("REEL_TEST_SLOW_MS");
    return rank && ms ? std::atoi(ms) : 0;
  }();
  static const int slow_rank = [] {
    const char* rank = std::getenv("REEL_TEST_SLOW_RANK");
    return rank ? std::atoi(rank) : -1;
  }();
  if (slow_ms > 0 && world_rank == slow_rank) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));
}

}  // namespace reel
