// Errors raised by reel's communication layer.
//
// Every failed MPI, NCCL or CUDA call becomes a DistError that names the operation,
// the world rank, the host, and the source file and line of the call, so that a fault
// on rank 37 of a 512-rank job reads as one clear line instead of a hang.
// Library code throws; only the launcher decides how the process ends.
#pragma once

#include <stdexcept>
#include <string>

namespace reel {

// A failed call into MPI, NCCL or CUDA (or a communication timeout).
class DistError : public std::runtime_error {
 public:
  DistError(const std::string& op, const std::string& detail, const char* file, int line);

  const std::string& op() const { return op_; }
  int rank() const { return rank_; }
  const std::string& host() const { return host_; }

 private:
  std::string op_;
  int rank_;
  std::string host_;
};

// This process's world rank as MPI knows it, or -1 before MPI_Init / after finalize.
int world_rank_or_unknown();
// The host name, cached after the first call.
const std::string& host_name();
// The node this process runs on, as placement groups ranks: $REEL_NODE_NAME when set (a
// container that is one of several on a machine, or tests that emulate nodes on one
// host), else Slurm's name for it ($SLURMD_NODENAME: what srun --exclude takes, which
// may differ from the host name), else the host name. Ranks with one node name share a node.
const std::string& node_name();

// "op on rank R (host H)": the prefix of every error message about a call's input.
std::string where(const std::string& op);

// Throws std::invalid_argument("<op> on rank R (host H): <message>").
[[noreturn]] void throw_invalid(const std::string& op, const std::string& message);

// Throws DistError when an MPI call did not return MPI_SUCCESS.
void check_mpi(int code, const char* call, const char* file, int line);

}  // namespace reel

#define REEL_MPI_CHECK(call) ::reel::check_mpi((call), #call, __FILE__, __LINE__)
