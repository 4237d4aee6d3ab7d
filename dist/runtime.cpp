#include "reel/dist/runtime.hpp"

#include "reel/dist/node_monitor.hpp"

#include <exception>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <mpi.h>
#include <sched.h>

#include <cstdlib>
#include <thread>

#include "reel/dist/error.hpp"
#include "reel/dist/mpi_communicator.hpp"
#include "reel/dist/watchdog.hpp"
#ifdef REEL_HAVE_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif
#ifdef REEL_HAVE_NCCL
#include "reel/dist/nccl_communicator.hpp"
#endif

namespace reel {

namespace {
const char* env(const char* name) { return std::getenv(name); }

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  return v ? std::atoi(v) : fallback;
}
}  // namespace

std::string detect_launcher() {
  if (env("OMPI_COMM_WORLD_SIZE")) return "mpirun";
  if (env("SLURM_STEP_ID") && env("SLURM_PROCID")) return "srun";
  if (env("PMIX_RANK")) return "mpirun";
  return "none";
}

int default_threads(int local_size) {
  cpu_set_t set;
  CPU_ZERO(&set);
  int usable = static_cast<int>(std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof(set), &set) == 0) usable = CPU_COUNT(&set);
  const int total = static_cast<int>(std::thread::hardware_concurrency());
  // Bound to a subset of the machine: the launcher already gave this rank its share.
  if (usable < total) return std::max(1, usable);
  return std::max(1, usable / std::max(1, local_size));
}

bool nccl_usable() {
#ifdef REEL_HAVE_NCCL
  return at::hasCUDA() && at::getNumGPUs() > 0;
#else
  return false;
#endif
}

namespace {

// Rank and size on this host, from MPI's shared-memory split.
void fill_local(LaunchInfo& info) {
  MPI_Comm local;
  REEL_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.world_rank, MPI_INFO_NULL, &local));
  REEL_MPI_CHECK(MPI_Comm_rank(local, &info.local_rank));
  REEL_MPI_CHECK(MPI_Comm_size(local, &info.local_size));
  REEL_MPI_CHECK(MPI_Comm_free(&local));
}

// srun without a PMI plugin MPI understands: Open MPI either fails inside MPI_Init or
// starts N singletons. Caught from the environment before MPI_Init can abort.
void check_environment() {
  const int slurm_tasks = env_int("SLURM_NTASKS", 0);
  if (detect_launcher() == "srun" && slurm_tasks > 1 && !env("PMIX_RANK") && !env("PMI_RANK")) {
    throw std::runtime_error("launched by srun with SLURM_NTASKS=" + std::to_string(slurm_tasks) +
                             " but without PMIx, so MPI cannot form one job: use srun --mpi=pmix (or set "
                             "MpiDefault=pmix in slurm.conf), or mpirun inside the allocation");
  }
}

// srun without PMIx starts N singletons: every rank sees a world of 1 while Slurm says N.
void check_launch(const LaunchInfo& info) {
  const int slurm_tasks = env_int("SLURM_NTASKS", 0);
  if (info.launcher == "srun" && slurm_tasks > 1 && info.world_size == 1) {
    throw std::runtime_error("launched by srun with SLURM_NTASKS=" + std::to_string(slurm_tasks) +
                             " but MPI sees a world of 1 rank: srun did not hand MPI the job (use srun "
                             "--mpi=pmix, or set MpiDefault=pmix)");
  }
  // srun sets SLURM_NTASKS for its job step: any other world size means the ranks were
  // not started as one job (e.g. mpirun of several ranks inside each srun task).
  if (info.launcher == "srun" && slurm_tasks > 0 && info.world_size != slurm_tasks) {
    throw std::runtime_error("launched by srun with SLURM_NTASKS=" + std::to_string(slurm_tasks) +
                             " but MPI formed a world of " + std::to_string(info.world_size) +
                             " ranks: start one rank per task with srun --mpi=pmix, or mpirun inside the "
                             "allocation (not both)");
  }
}

CommunicatorPtr make_world(BackendKind kind, const RuntimeConfig& config) {
  if (kind == BackendKind::kAuto) kind = nccl_usable() ? BackendKind::kNccl : BackendKind::kMpi;
  if (kind == BackendKind::kMpi) return MpiCommunicator::create(MPI_COMM_WORLD, config.comm);
#ifdef REEL_HAVE_NCCL
  if (!nccl_usable()) {
    throw std::runtime_error("backend nccl requested but no CUDA device is visible on rank " +
                             std::to_string(world_rank_or_unknown()) + " (host " + host_name() + ")");
  }
  return NcclCommunicator::create(MPI_COMM_WORLD, config.comm);
#else
  (void)config;
  throw std::runtime_error(
      "backend nccl requested but this reel was built without NCCL "
      "(configure with REEL_CUDA=ON on a machine with nvcc and NCCL)");
#endif
}

}  // namespace

Runtime::Runtime(const RuntimeConfig& config) {
  if (config.threads < 0) {
    throw std::invalid_argument("threads must be >= 0 (0 = automatic), got " + std::to_string(config.threads));
  }
  // Read before MPI_Init: a singleton MPI_Init sets launcher-like variables itself.
  info_.launcher = detect_launcher();
  int initialized = 0;
  REEL_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    check_environment();
    // The communication thread waits in blocking MPI calls, which Open MPI serves by
    // busy-polling: where ranks and their threads share cores, the poll takes a core from
    // the computation, and FSDP prefetch made steps slower instead of faster (6%, 2 ranks on
    // 2 cores; docs/bench-train.md). Yielding while idle gives the core back. A setting in
    // the environment (OMPI_MCA_mpi_yield_when_idle=0) wins.
    ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    int provided = 0;
    REEL_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided));
    owns_mpi_ = true;
  }
  int provided = 0;
  REEL_MPI_CHECK(MPI_Query_thread(&provided));
  if (provided < MPI_THREAD_MULTIPLE) {
    throw std::runtime_error("the MPI library provides thread level " + std::to_string(provided) +
                             "; reel needs MPI_THREAD_MULTIPLE");
  }
  REEL_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  REEL_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.world_rank));
  REEL_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.world_size));
  info_.host = host_name();
  fill_local(info_);
  check_launch(info_);
  if (at::hasCUDA() && at::getNumGPUs() > 0) {
    info_.device_index = info_.local_rank % static_cast<int>(at::getNumGPUs());
#ifdef REEL_HAVE_CUDA
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(info_.device_index));
#endif
  }
  info_.threads = config.threads > 0 ? config.threads : default_threads(info_.local_size);
  at::set_num_threads(info_.threads);
  RuntimeConfig effective = config;
  // NCCL's own abort comes 30 s after the watchdog's, so the watchdog's dump is written
  // first; dist.timeout 0 (never) leaves NCCL a day.
  effective.comm.timeout = config.timeout_s > 0 ? std::chrono::seconds(config.timeout_s + 30) : std::chrono::hours(24);
  world_ = make_world(config.backend, effective);
  world_->set_label("world");
  // Every rank watches its own waits: a rank that stops or hangs ends the job (dist/watchdog.hpp).
  Watchdog::start(std::chrono::seconds(config.timeout_s), info_.world_rank, info_.host);
  // A node that disappears ends the job naming it, not after the watchdog's timeout.
  NodeMonitor::start(*world_, std::chrono::seconds(config.node_timeout_s));
}

Runtime::~Runtime() {
  // Unwinding from an error on this rank: MPI stays initialised so that the caller can
  // MPI_Abort the whole job. Finalising (or freeing communicators) alone would leave the
  // other ranks waiting forever in their next collective, and this rank inside
  // MPI_Finalize, waiting for them.
  if (std::uncaught_exceptions() > 0) return;
  NodeMonitor::stop();  // ranks leave from here on; none of them is lost
  world_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_mpi_ && !finalized) MPI_Finalize();
}

}  // namespace reel
