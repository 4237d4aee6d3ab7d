// Bus bandwidth of each collective through reel's Communicator (MPI backend) and through
// the raw MPI call on the same buffers, 1 KiB .. 256 MiB; prints a markdown table with
// the ratio reel / raw. Run under mpirun at 2 and 4 ranks (scripts/bench_comm.sh).
//
// Size is the largest buffer of the call (nccl-tests' convention): the all-gather output,
// the reduce-scatter input, the all-reduce / all-to-all / broadcast buffer. Bus bandwidth
// = size / time x (2(n-1)/n for all-reduce, (n-1)/n for all-gather, reduce-scatter and
// all-to-all, 1 for broadcast). Each point is the median of `reps` alternating raw/reel
// rounds; a round's time is the slowest rank's mean over `iters` calls.
#include <ATen/ATen.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reel/dist/mpi_communicator.hpp"
#include "reel/dist/runtime.hpp"

namespace {

using Call = std::function<void()>;

struct Point {
  double raw_s, reel_s;
};

// Slowest rank's mean seconds per call over iters calls.
double time_calls(const Call& call, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i) call();
  double mine = (MPI_Wtime() - start) / iters, slowest = 0;
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

Point measure(const Call& raw, const Call& reel, int reps) {
  raw();
  reel();  // warm-up: first-touch of buffers, MPI connection set-up
  // About 0.2 s per round, the same count on every rank.
  int iters = static_cast<int>(std::clamp(0.2 / std::max(time_calls(raw, 1), 1e-7), 2.0, 500.0));
  MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<double> r, q;
  for (int i = 0; i < reps; ++i) {
    r.push_back(time_calls(raw, iters));
    q.push_back(time_calls(reel, iters));
  }
  std::sort(r.begin(), r.end());
  std::sort(q.begin(), q.end());
  return {r[reps / 2], q[reps / 2]};
}

std::string human(int64_t bytes) {
  char buf[32];
  if (bytes >= (1 << 20))
    std::snprintf(buf, sizeof buf, "%lld MiB", (long long)(bytes >> 20));
  else
    std::snprintf(buf, sizeof buf, "%lld KiB", (long long)(bytes >> 10));
  return buf;
}

// One size of one collective: raw MPI's call and reel's on the same float32 buffers.
struct Case {
  at::Tensor big, other, part, big_n, other_n;  // [count], [count], [chunk], [chunk x n], [chunk x n]
  Call raw, reel;
};

std::unique_ptr<Case> make_case(const std::string& name, int64_t bytes, reel::Communicator& comm, MPI_Comm raw) {
  auto c = std::make_unique<Case>();
  const int64_t count = bytes / 4, chunk = count / comm.size();  // float32 elements
  c->big = at::rand({count}), c->other = at::rand({count});
  c->part = c->big.narrow(0, 0, chunk).clone();
  c->big_n = c->big.narrow(0, 0, chunk * comm.size()), c->other_n = c->other.narrow(0, 0, chunk * comm.size());
  Case& k = *c;
  const int n = int(count), m = int(chunk);
  if (name == "all_reduce") {
    k.raw = [&k, n, raw] { MPI_Allreduce(MPI_IN_PLACE, k.big.data_ptr(), n, MPI_FLOAT, MPI_SUM, raw); };
    k.reel = [&k, &comm] { comm.all_reduce(k.big); };
  } else if (name == "all_gather") {
    k.raw = [&k, m, raw] { MPI_Allgather(k.part.data_ptr(), m, MPI_FLOAT, k.big_n.data_ptr(), m, MPI_FLOAT, raw); };
    k.reel = [&k, &comm] { comm.all_gather(k.part, k.big_n); };
  } else if (name == "reduce_scatter") {
    k.raw = [&k, m, raw] {
      MPI_Reduce_scatter_block(k.big_n.data_ptr(), k.part.data_ptr(), m, MPI_FLOAT, MPI_SUM, raw);
    };
    k.reel = [&k, &comm] { comm.reduce_scatter(k.big_n, k.part); };
  } else if (name == "all_to_all") {
    k.raw = [&k, m, raw] { MPI_Alltoall(k.big_n.data_ptr(), m, MPI_FLOAT, k.other_n.data_ptr(), m, MPI_FLOAT, raw); };
    k.reel = [&k, &comm] { comm.all_to_all(k.big_n, k.other_n); };
  } else {
    k.raw = [&k, n, raw] { MPI_Bcast(k.big.data_ptr(), n, MPI_FLOAT, 0, raw); };
    k.reel = [&k, &comm] { comm.broadcast(k.big, 0); };
  }
  return c;
}

// reel / raw time ratios from 1 MiB up: their geometric mean, lowest and highest.
struct Summary {
  double log_sum = 0, lowest = 1e9, highest = 0;
  int points = 0;
  void add(double ratio) {
    log_sum += std::log(ratio), lowest = std::min(lowest, ratio), highest = std::max(highest, ratio), ++points;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int64_t max_mib = 256;
  int reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--max-mib"))
      max_mib = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::atoi(argv[i + 1]);
  }
  reel::RuntimeConfig config;
  config.backend = reel::BackendKind::kMpi;
  reel::Runtime runtime(config);
  auto& comm = *runtime.world();
  MPI_Comm raw;
  MPI_Comm_dup(MPI_COMM_WORLD, &raw);
  const int n = comm.size(), me = comm.rank();
  if (me == 0) {
    std::printf("| op | size | raw MPI busbw (GB/s) | reel busbw (GB/s) | reel / raw |\n");
    std::printf("|---|---:|---:|---:|---:|\n");
  }
  Summary summary;
  for (const std::string name : {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast"}) {
    const double factor = name == "all_reduce" ? 2.0 * (n - 1) / n : name == "broadcast" ? 1.0 : double(n - 1) / n;
    for (int64_t bytes = 1024; bytes <= (max_mib << 20); bytes *= 4) {
      const auto c = make_case(name, bytes, comm, raw);
      const Point p = measure(c->raw, c->reel, reps);
      if (me != 0) continue;
      const double raw_bw = bytes / p.raw_s * factor / 1e9, reel_bw = bytes / p.reel_s * factor / 1e9;
      std::printf("| %s | %s | %.2f | %.2f | %.3f |\n", name.c_str(), human(bytes).c_str(), raw_bw, reel_bw,
                  p.raw_s / p.reel_s);
      std::fflush(stdout);
      if (bytes >= (1 << 20)) summary.add(p.raw_s / p.reel_s);
    }
  }
  if (me == 0 && summary.points) {
    std::printf("\nreel / raw from 1 MiB up, %d points: geometric mean %.3f (min %.3f, max %.3f)\n", summary.points,
                std::exp(summary.log_sum / summary.points), summary.lowest, summary.highest);
  }
  MPI_Comm_free(&raw);
  return 0;
}
