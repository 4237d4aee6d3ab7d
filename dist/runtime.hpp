// Runtime: start-up of a reel process — MPI, where this rank runs, its device, its
// threads, and the world communicator of the chosen backend.
//
// Works under `mpirun`, under `srun --mpi=pmix`, and as a single process with no launcher
// (an MPI singleton of size 1). Ranks and local ranks come from MPI itself (a
// shared-memory split), never from parsing launcher variables; those are only read to
// detect a launch MPI did not see (srun without PMIx), which otherwise yields N
// independent jobs of size 1.
#pragma once

#include <memory>
#include <string>

#include "reel/dist/communicator.hpp"
#include "reel/dist/enum_names.hpp"

namespace reel {

enum class BackendKind { kAuto, kMpi, kNccl };
constexpr EnumNames<BackendKind, 3> enum_names(BackendKind) {
  return {{{BackendKind::kAuto, "auto"}, {BackendKind::kMpi, "mpi"}, {BackendKind::kNccl, "nccl"}}};
}

struct RuntimeConfig {
  BackendKind backend = BackendKind::kAuto;  // auto: NCCL when this rank has a GPU and NCCL is built in
  int threads = 0;                           // intra-op threads per rank; 0: cores / local ranks (>= 1)
  // Seconds a rank may wait in one communication before it dumps and aborts the job
  // (dist/watchdog.hpp; also NCCL's timeout). 0: wait forever.
  int timeout_s = 60;
  // Seconds a node may stop answering the others' probes before the job ends naming it
  // (dist/node_monitor.hpp; jobs on more than one node). 0: only the watchdog.
  int node_timeout_s = 30;
  // Every N training steps the ranks compare fingerprints of the collectives they issued
  // (Watchdog::fingerprint) and stop with a report before a divergence hangs. 0: never.
  int desync_every = 50;
  CommOptions comm;
};

struct LaunchInfo {
  std::string launcher;  // "mpirun", "srun" or "none"
  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;  // among the ranks on this host
  int local_size = 1;
  std::string host;
  int device_index = -1;  // CUDA device of this rank, -1 for CPU
  int threads = 1;        // intra-op threads set for this rank
};

// Which launcher started this process, from its environment ("mpirun", "srun", "none").
std::string detect_launcher();
// Intra-op threads for a rank: the CPUs this process may run on, divided among the local
// ranks unless the launcher already bound each rank to its own CPUs; at least 1.
int default_threads(int local_size);

class Runtime {
 public:
  // Initialises MPI with MPI_THREAD_MULTIPLE unless already initialised, validates the
  // launch, maps the local rank to a GPU when there are GPUs, sets threads, and creates
  // the world communicator. Throws on any failure.
  explicit Runtime(const RuntimeConfig& config);
  // Finalises MPI if this Runtime initialised it. Communicators made from world() must be
  // destroyed first. During exception unwinding it does nothing: the error is this
  // rank's alone, and the caller must MPI_Abort the job (launch/main.cpp does).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const LaunchInfo& info() const { return info_; }
  const CommunicatorPtr& world() const { return world_; }

 private:
  LaunchInfo info_;
  bool owns_mpi_ = false;
  CommunicatorPtr world_;
};

// True when reel was built with NCCL and this process sees a CUDA device.
bool nccl_usable();

}  // namespace reel
