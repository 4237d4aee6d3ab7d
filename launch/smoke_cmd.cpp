// `reel smoke`: a multi-rank smoke run of the communication layer. Builds the runtime and
// a dp x sp mesh, runs every collective on the world, dp and sp groups, checks each result
// against what it must be, and prints one line per (group, call) on rank 0.
#include <ATen/ATen.h>
#include <boost/program_options.hpp>

#include <chrono>
#include <iostream>

#include "reel/dist/agreement.hpp"
#include "reel/dist/logging.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/dist/runtime.hpp"
#include "reel/dist/runtime_options.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"

namespace po = boost::program_options;

namespace reel {
namespace {

struct SmokeResult {
  std::string call;
  double seconds;
  bool ok;
};

// Runs one call, timing it; ok must hold on every rank of the group.
template <typename Fn>
SmokeResult timed(Communicator& group, const std::string& call, Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  const bool ok = fn();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {call, seconds, !any_rank(group, !ok)};
}

std::vector<SmokeResult> exercise(Communicator& g, int64_t n) {
  const auto opts = at::TensorOptions(at::kFloat).device(g.device());
  const int r = g.rank(), size = g.size();
  const float total = size * (size + 1) / 2.0f;
  std::vector<SmokeResult> out;
  out.push_back(timed(g, "all_reduce", [&] {
    auto t = at::full({n}, r + 1.0f, opts);
    g.all_reduce(t);
    return t.eq(total).all().item<bool>();
  }));
  out.push_back(timed(g, "all_gather", [&] {
    auto in = at::full({n}, float(r), opts), all = at::empty({size * n}, opts);
    g.all_gather(in, all);
    return all.view({size, n}).equal(at::arange(size, opts).unsqueeze(1).expand({size, n}));
  }));
  out.push_back(timed(g, "reduce_scatter", [&] {
    auto in = at::full({size * n}, r + 1.0f, opts), mine = at::empty({n}, opts);
    g.reduce_scatter(in, mine);
    return mine.eq(total).all().item<bool>();
  }));
  out.push_back(timed(g, "all_to_all", [&] {
    auto in = (at::arange(size, opts) + 100.0f * r).repeat_interleave(n);
    auto got = at::empty_like(in);
    g.all_to_all(in, got);
    auto want = (at::arange(size, opts) * 100.0f + r).repeat_interleave(n);
    return got.equal(want);
  }));
  out.push_back(timed(g, "broadcast", [&] {
    auto t = at::full({n}, float(r), opts);
    g.broadcast(t, size - 1);
    return t.eq(float(size - 1)).all().item<bool>();
  }));
  out.push_back(timed(g, "sendrecv", [&] {
    auto mine = at::full({n}, float(r), opts), got = at::empty({n}, opts);
    g.sendrecv(mine, (r + 1) % size, got, (r + size - 1) % size);
    return got.eq(float((r + size - 1) % size)).all().item<bool>();
  }));
  out.push_back(timed(g, "barrier", [&] {
    g.barrier();
    return true;
  }));
  return out;
}

}  // namespace

int run_smoke(int argc, char** argv) {
  RuntimeConfig config;
  LogConfig log;
  MeshConfig mesh_config;  // its defaults
  double mib = 4;
  po::options_description desc("reel smoke options");
  desc.add_options()("help,h", "show this help")(
      "parallel.dp", po::value(&mesh_config.dp)->default_value(mesh_config.dp), "data-parallel degree (0: world / sp)")(
      "parallel.sp", po::value(&mesh_config.sp)->default_value(mesh_config.sp), "sequence-parallel degree")(
      "mib", po::value(&mib)->default_value(4), "MiB per rank for each call");
  // The runtime options every rank-starting command shares, less those only training uses
  // (desync checks every N steps, a trace of steps): smoke has no steps.
  visit_runtime_options(config, log, [&](const std::string& key, auto& field, const char* help) {
    if (key != "dist.desync_every" && key != "log.trace") OptionAdder{desc}(key, field, help);
  });
  if (!parse_options(argc, argv, desc)) return 0;
  if (mib <= 0) throw std::invalid_argument("--mib must be > 0, got " + std::to_string(mib));
  if (mesh_config.sp < 1)
    throw std::invalid_argument("--parallel.sp must be >= 1, got " + std::to_string(mesh_config.sp));

  Runtime runtime(config);
  const Logger logger(log, runtime.info().world_rank);
  const int world = runtime.world()->size();
  auto mesh = ProcessMesh::create(runtime.world(), mesh_config);
  const auto& info = runtime.info();
  logger.info(cat("reel smoke: ", world, " rank(s) via ", info.launcher, ", backend ", runtime.world()->backend(), ", ",
                  info.threads, " threads/rank; ", mesh.describe()));
  const int64_t n = std::max<int64_t>(1, static_cast<int64_t>(mib * (1 << 20) / 4));
  int failures = 0;
  for (const char* axis : {"world", "dp", "sp", "shard", "replicate"}) {
    for (const auto& r : exercise(mesh.axis(axis), n)) {
      failures += !r.ok;
      logger.info(cat(pad(axis, -5), " group (size ", mesh.axis(axis).size(), ") ", pad(r.call, 15),
                      pad(fixed(r.seconds * 1e3, 3), -9), " ms  ", r.ok ? "ok" : "WRONG RESULT"));
    }
  }
  if (failures) throw std::runtime_error(std::to_string(failures) + " collectives gave wrong results");
  logger.info("reel smoke: all collectives correct on every group");
  return 0;
}

}  // namespace reel
