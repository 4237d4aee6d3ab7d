// The slow rank, named (log.straggler_every, log.straggler_threshold).
//
// In a synchronous step every rank waits for the slowest one, so the time a slow rank
// loses shows on the others as exposed communication wait: the straggler has MORE
// compute (or data wait) and LESS communication wait than the rest, its victims the
// reverse. A straggler is therefore judged only on the time it spends on its own —
// "busy" = compute + data wait — never on its communication wait.
//
// Every `every` steps the ranks exchange their sums over the window (one all-gather of 3
// doubles per rank); a rank whose busy time exceeds the median rank's by more than
// `threshold` (a fraction of that median) is a straggler for the window. Sums over a
// window, not single steps, so that a descheduled step or a slow batch now and then is
// not reported; reported again in every window where it persists, and said once when
// it stops.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "reel/dist/communicator.hpp"
#include "reel/dist/logging.hpp"

namespace reel {

struct StragglerConfig {
  int64_t every = 50;  // steps per window (0: off, no collective at all)
  // Busy time over the median rank's, as a fraction of it. 4 ranks of the tiny model on 2
  // shared cores, 10-step windows, measured the largest excess of any rank at 9% idle and
  // 16% with a third process busy (60 windows); 0.25 stays clear of that noise.
  double threshold = 0.25;
  // Throws std::invalid_argument naming the option.
  void validate() const;
};

// One rank's time in a window, summed over its steps (seconds).
struct PhaseSums {
  double compute_s = 0;  // step - exposed communication - data wait
  double comm_s = 0;     // exposed communication wait
  double data_s = 0;     // waiting for batches
  double busy() const { return compute_s + data_s; }
};

struct Straggler {
  int rank = 0;
  std::string phase;   // "compute" | "data": the phase that holds most of its extra time
  double excess = 0;   // (busy - median busy) / median busy
  double extra_s = 0;  // busy - median busy, seconds over the window
  // The other ranks (not stragglers themselves) whose exposed communication wait exceeds
  // the straggler's by at least half its extra time: those that waited for it.
  std::vector<int> victims;
};

// The median of xs (the mean of the middle two for an even count; 0 when empty).
double median(std::vector<double> xs);

// Pure: the stragglers among ranks (index = rank), the largest excess first; none when
// the median busy time is not positive. A rank whose only excess is communication wait
// is never named (it is a victim).
std::vector<Straggler> find_stragglers(const std::vector<PhaseSums>& ranks, double threshold);

// The collective glue the training loop calls after every step.
class StragglerWatch {
 public:
  // Collective over world when config.every > 0 and world has more than one rank: each
  // rank's host name, gathered once for the reports. Throws std::invalid_argument for a
  // bad configuration (on every rank alike: the configuration is the same).
  StragglerWatch(const StragglerConfig& config, Communicator& world, const Logger& log);
  // On every rank after each step, with that step's times. Every config.every-th step
  // (1-based `step`) it is collective over world: exchanges the window's sums, warns (rank
  // 0) about each straggler and returns the metrics field (null when there is none or it
  // is not a window's end). Persisting stragglers are reported in every window.
  nlohmann::json after_step(int64_t step, const PhaseSums& times);

 private:
  nlohmann::json report(int64_t step, const std::vector<Straggler>& found);

  StragglerConfig config_;
  Communicator& world_;
  Logger log_;
  std::vector<std::string> hosts_;  // by rank
  PhaseSums window_;                // this rank's, since the last window's end
  int64_t window_start_ = -1;       // the window's first step (1-based); -1: none yet
  std::vector<int> last_named_;     // the ranks the previous window named
};

// Test-only slow-down, never for production: when REEL_TEST_SLOW_RANK=R and
// REEL_TEST_SLOW_MS=M are set (read once per process), world rank R sleeps M ms each
// time this is called — inside its compute phase, at the start of every training step —
// so that the straggler tests have a rank that is slow for certain. A no-op otherwise.
void test_slow_rank_sleep(int world_rank);

}  // namespace reel
