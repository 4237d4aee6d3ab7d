// reel: the one executable. `reel <command> [options]`; `reel --help`, `reel --version`.
//
// This is the only place that decides how the process ends: an error on one rank of a
// multi-rank job aborts the whole job (reel::abort_job: MPI_Abort) after printing it,
// because the other ranks would otherwise wait forever in their next collective.
#include <unistd.h>  // first: defines __GLIBC__ (features.h) on glibc, for the test below
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "reel/dist/abort_registry.hpp"
#include "reel/dist/agreement.hpp"
#include "reel/dist/node_monitor.hpp"
#include "reel/dist/watchdog.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"
#include "reel/launch/version.hpp"

namespace {

void print_help(std::ostream& out) {
  out << "reel " << reel::version_string() << " — train long-context video world models\n\n"
      << "usage: reel <command> [options]      (reel <command> --help for its options)\n"
      << "       reel --version | --help\n\ncommands:\n";
  for (const auto& c : reel::commands()) {
    out << "  " << c.name << std::string(13 - std::min<size_t>(12, c.name.size()), ' ') << c.summary << "\n";
  }
  out << "\nMulti-rank: mpirun -np 4 reel <command> ...  or  srun --mpi=pmix reel <command> ...\n";
}

int fail(const std::string& message) {
  const int size = reel::job_world_size(), rank = reel::job_rank();
  char host[256] = "?";
  ::gethostname(host, sizeof(host) - 1);
  // One write: the other ranks' messages and mpirun's abort banner go to the same terminal
  // and would otherwise land inside this line.
  const std::string line =
      "reel: error" + (size > 1 ? " on rank " + std::to_string(rank) + " (" + host + ")" : "") + ": " + message + "\n";
  std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
  std::cerr.flush();
  // NCCL kernels waiting on peers would outlive the error, and destroying their
  // communicators at exit could hang: abort them all first.
  reel::AbortRegistry::process().abort_all(message);
  if (size > 1) reel::abort_job(1);  // the other ranks would hang otherwise
  return 1;
}

}  // namespace

// The watchdog found a rank blocked past dist.timeout and wrote its dump: end the whole
// job, after a grace period in which the other live ranks reach their own dumps.
void on_hang(const std::string&) {
  reel::AbortRegistry::process().abort_all("a collective hung past dist.timeout");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  reel::abort_job(1);
}

// A node stopped answering (dist/node_monitor.hpp): its ranks can take part in no
// collective again, so end the job now, naming it. abort_job (MPI_Abort) may itself wait
// on the lost node's processes; a last-resort exit makes sure this process ends either way
// (srun's --kill-on-bad-exit then ends the rest of the step).
void on_node_lost(const std::string& report) {
  std::cerr << "reel: error: " << report << std::endl;
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(10));
    std::_Exit(1);
  }).detach();
  reel::AbortRegistry::process().abort_all(report);
  reel::abort_job(1);
}

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // A step frees and re-allocates the same activation-sized buffers (up to tens of MiB on
  // CPU). glibc serves large ones with mmap and trims the heap's top once 2x its (dynamic)
  // mmap threshold is free, so every step pays fresh zeroed pages again. Serving up to
  // 32 MiB from the heap and trimming only past 1 GiB keeps them: a tiny step on 2 threads
  // took 5% less time (7 A/B pairs, docs/bench-train.md). Memory freed stays resident.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  reel::Watchdog::set_hang_handler(on_hang);
  reel::NodeMonitor::set_loss_handler(on_node_lost);
  // A file-size limit (ulimit -f) then fails the write with EFBIG, which the writer reports
  // like a full disk, instead of killing the process without a word.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help(std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "reel " << reel::version_string() << "\n";
    return 0;
  }
  for (const auto& c : reel::commands()) {
    if (c.name != argv[1]) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const reel::UsageError& e) {
      if (reel::job_running()) return fail(e.what());  // after start-up: end every rank
      std::cerr << "reel " << c.name << ": " << e.what() << " (reel " << c.name << " --help lists the options)"
                << std::endl;
      return 2;
    } catch (const std::exception& e) {
      return fail(e.what());
    }
  }
  std::cerr << "reel: unknown command '" << argv[1] << "'\n\n";
  print_help(std::cerr);
  return 2;
}
