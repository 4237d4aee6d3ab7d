// Sequence parallelism, measured on CPU ranks (run with mpirun -np 4; every layout uses
// the whole world: dp x sp = 4):
//   longest   the longest clip whose training step fits a per-rank memory budget, at
//             sp = 1, 2, 4 per mode (the step's resident peak above what the rank held
//             before it: activations, attention transients, communication buffers)
//   bytes     attention bytes each rank sent in one step against the layout's analytic
//             volume (SequenceParallel::expected_bytes_per_block)
//   ring      the share of ring communication hidden behind computation (overlap on vs
//             off), and the frame-causal balance: slowest rank's attention time / mean,
//             zigzag vs contiguous
//   speed     tokens/s at sp = 2 and 4 against dp only, same ranks, same global batch
// Prints markdown tables (bench/sp_bench.sh records them in docs/).
#include <malloc.h>

#include <boost/program_options.hpp>

#include <chrono>
#include <iomanip>
#include <iostream>

#include "reel/dist/runtime.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/world_model.hpp"
#include "reel/parallel/parallelize.hpp"
#include "reel/train/memory.hpp"

namespace po = boost::program_options;
using namespace reel;

namespace {

struct Layout {
  int sp;
  SpMode mode;
  SpBalance balance = SpBalance::kZigzag;
  bool overlap = true;
  std::string name() const { return sp == 1 ? "sp=1" : enum_name(mode) + std::string(" sp=") + std::to_string(sp); }
};

struct Outcome {
  double peak_mib = 0;  // max over ranks: the step's resident peak above the rank's baseline
  double step_s = 0;    // max over ranks, best of the timed steps
  SequenceStats stats;  // this rank's, from the last step
  int64_t expected_bytes = 0;
  double compute_max = 0, compute_mean = 0;  // ring attention time over ranks
  double work_max = 0, work_mean = 0;        // ring attention score elements over ranks
};

double max_over(Communicator& c, double x, bool mean = false) {
  auto t = at::full({1}, x, at::kDouble);
  c.all_reduce(t, mean ? ReduceOp::kSum : ReduceOp::kMax);
  return t.item<double>() / (mean ? c.size() : 1);
}

ModelConfig with_groups(ModelConfig cfg, int64_t groups) {
  cfg.frames = groups * cfg.patch_t;
  cfg.context_groups = std::max<int64_t>(1, groups / 8);
  return cfg;
}

// Builds the layout, runs `steps` training steps of `batch` clips per sp group; the first
// is the one measured for memory, the rest are timed.
Outcome run(Runtime& rt, const ModelConfig& cfg, const Layout& l, int64_t batch, int steps) {
  const int n = rt.world()->size();
  SequenceConfig sc{l.mode, l.mode == SpMode::kHybrid ? 2 : 0, l.balance, l.overlap};
  auto mesh = ProcessMesh::create(rt.world(), MeshConfig{n / l.sp, l.sp, 0}, sc.ulysses_degree(l.sp));
  WorldModel model(cfg, ParamInit{at::kCPU, true, 1});
  ParallelConfig pc;
  pc.sequence = sc;
  auto par = parallelize(*model, mesh, pc, 1);
  Outcome o;
  for (int s = 0; s < steps; ++s) {
    ::malloc_trim(0);
    mesh.world().barrier();
    reset_peak_resident();
    const int64_t base = resident_bytes();
    const auto start = std::chrono::steady_clock::now();
    {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + mesh.dp_rank());
      auto x0 = at::empty({batch, cfg.tokens(), cfg.patch_dim()}, at::kFloat).uniform_(-1, 1, gen);
      std::vector<int64_t> ids(batch);
      for (int64_t i = 0; i < batch; ++i) ids[i] = mesh.dp_rank() * batch + i;
      auto flow = select_tokens(make_flow_batch(x0, ids, s, 1, cfg), par.sequence->index());
      x0 = at::Tensor();
      auto actions = at::zeros({batch, cfg.frames, cfg.action_dim});
      auto loss = flow_loss_sum(
          par.fsdp->forward([&] { return model->forward(flow.x_t, flow.t, actions, par.sequence->index()); }), flow);
      loss.backward();
      par.fsdp->finish_backward();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s == 0) o.peak_mib = max_over(mesh.world(), double(peak_resident_bytes() - base) / (1 << 20));
    const double t = max_over(mesh.world(), secs);
    if (s > 0 || steps == 1) o.step_s = o.step_s == 0 ? t : std::min(o.step_s, t);  // best timed step
    o.stats = par.sequence->take_stats();
  }
  o.expected_bytes = cfg.depth * par.sequence->expected_bytes_per_block(batch, 4);
  o.compute_max = max_over(mesh.world(), o.stats.ring_compute_s);
  o.compute_mean = max_over(mesh.world(), o.stats.ring_compute_s, true);
  o.work_max = max_over(mesh.world(), double(o.stats.ring_work));
  o.work_mean = max_over(mesh.world(), double(o.stats.ring_work), true);
  return o;
}

// The most frame-groups (a multiple of `step` groups) whose step fits `budget` MiB.
int64_t longest(Runtime& rt, const ModelConfig& base, const Layout& l, double budget, int64_t step) {
  auto fits = [&](int64_t g) { return run(rt, with_groups(base, g), l, 1, 1).peak_mib <= budget; };
  int64_t lo = 0, hi = step;
  while (fits(hi)) lo = hi, hi *= 2;
  while (hi - lo > step) {
    const int64_t mid = (lo + hi) / 2 / step * step;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

const std::vector<Layout> kLayouts = {{1, SpMode::kUlysses}, {2, SpMode::kUlysses}, {4, SpMode::kUlysses},
                                      {2, SpMode::kRing},    {4, SpMode::kRing},    {4, SpMode::kHybrid}};

// The longest clip each layout fits in `budget` MiB per rank.
void report_longest(Runtime& rt, const ModelConfig& base, double budget, bool root) {
  if (root) std::cout << "\n| layout | longest clip (tokens) | x sp=1 | / (sp x sp=1) |\n|---|---|---|---|\n";
  double single = 0;
  for (const auto& l : kLayouts) {
    const double tokens = double(longest(rt, base, l, budget, 2) * base.tokens_per_group());
    if (l.sp == 1) single = tokens;
    if (root) {
      std::cout << "| " << l.name() << " | " << int64_t(tokens) << " | " << tokens / single << " | "
                << tokens / single / l.sp << " |\n"
                << std::flush;
    }
  }
}

// Step time, throughput and attention bytes (measured and analytic) of each layout.
void report_speed(Runtime& rt, const ModelConfig& cfg, bool root) {
  if (root) {
    std::cout << "\n| layout (" << cfg.tokens()
              << "-token clips, 4 per step) | step (s) | tokens/s | vs dp only | "
                 "attention bytes sent, rank 0 | analytic |\n|---|---|---|---|---|---|\n";
  }
  double dp_only = 0;
  for (const auto& l : kLayouts) {
    const auto o = run(rt, cfg, l, 4 / (4 / l.sp), 4);  // every layout: 4 clips per step in all
    const double tps = 4.0 * cfg.tokens() / o.step_s;
    if (l.sp == 1) dp_only = tps;
    if (root) {
      std::cout << "| " << l.name() << " | " << o.step_s << " | " << int64_t(tps) << " | " << tps / dp_only << " | "
                << o.stats.bytes_sent << " | " << o.expected_bytes << " |\n"
                << std::flush;
    }
  }
}

// Ring sp=4 under frame-causal masking: load balance of contiguous and zigzag chunks, and
// how much of the ring's communication the overlap hides.
void report_ring(Runtime& rt, const ModelConfig& cfg, bool root) {
  if (root) {
    std::cout << "\n| ring sp=4, frame-causal | attention work max/mean | attention time max/mean | exposed wait (s) "
                 "| step (s) |\n|---|---|---|---|---|\n";
  }
  double wait_serial = 0, wait_overlap = 0;
  for (const Layout& l :
       {Layout{4, SpMode::kRing, SpBalance::kContiguous}, Layout{4, SpMode::kRing, SpBalance::kZigzag},
        Layout{4, SpMode::kRing, SpBalance::kZigzag, false}}) {
    const auto o = run(rt, cfg, l, 1, 4);
    const double wait = max_over(*rt.world(), o.stats.ring_wait_s, true);
    (l.overlap ? wait_overlap : wait_serial) = wait;
    if (root) {
      std::cout << "| " << l.balance << (l.overlap ? ", overlapped" : ", not overlapped") << " | "
                << o.work_max / o.work_mean << " | " << o.compute_max / o.compute_mean << " | " << wait << " | "
                << o.step_s << " |\n"
                << std::flush;
    }
  }
  if (root) {
    std::cout << "\nring communication hidden behind computation: "
              << 100.0 * (1.0 - wait_overlap / std::max(wait_serial, 1e-12)) << "%\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  double budget = 48;
  int64_t speed_groups = 16;
  std::string only;
  po::options_description desc("reel_sp_bench options");
  desc.add_options()("help,h", "show this help")("budget", po::value(&budget)->default_value(budget),
                                                 "per-rank memory budget of one step, MiB")(
      "speed-groups", po::value(&speed_groups)->default_value(speed_groups),
      "frame-groups per clip for speed and bytes")("only", po::value(&only),
                                                   "longest | bytes | ring | speed (default: all)");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) return std::cout << desc << "\n", 0;
  po::notify(vm);
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);  // large buffers go back to the system when freed
  RuntimeConfig rc;
  rc.backend = BackendKind::kMpi;
  Runtime rt(rc);
  const bool root = rt.world()->rank() == 0;
  const ModelConfig base = model_preset("long_cpu");  // 64 tokens per frame-group
  std::cout << std::fixed << std::setprecision(2);
  if (only.empty() || only == "longest") report_longest(rt, base, budget, root);
  const ModelConfig cfg = with_groups(base, speed_groups);
  if (only.empty() || only == "bytes" || only == "speed") report_speed(rt, cfg, root);
  if (only.empty() || only == "ring") report_ring(rt, cfg, root);
  return 0;
}
