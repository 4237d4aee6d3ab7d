#include "reel/dist/error.hpp"

#include <cstdlib>

#include <mpi.h>
#include <unistd.h>

#include <climits>

namespace reel {

int world_rank_or_unknown() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return -1;
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

const std::string& host_name() {
  static const std::string name = [] {
    char buf[HOST_NAME_MAX + 1] = {0};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return std::string("unknown-host");
    return std::string(buf);
  }();
  return name;
}

const std::string& node_name() {
  static const std::string name = [] {
    for (const char* variable : {"REEL_NODE_NAME", "SLURMD_NODENAME"}) {
      const char* given = std::getenv(variable);
      if (given && *given) return std::string(given);
    }
    return host_name();
  }();
  return name;
}

std::string where(const std::string& op) {
  return op + " on rank " + std::to_string(world_rank_or_unknown()) + " (host " + host_name() + ")";
}

void throw_invalid(const std::string& op, const std::string& message) {
  throw std::invalid_argument(where(op) + ": " + message);
}

namespace {
std::string format(const std::string& op, const std::string& detail, const char* file, int line) {
  return where(op) + " failed at " + file + ":" + std::to_string(line) + ": " + detail;
}
}  // namespace

DistError::DistError(const std::string& op, const std::string& detail, const char* file, int line)
    : std::runtime_error(format(op, detail, file, line)), op_(op), rank_(world_rank_or_unknown()), host_(host_name()) {}

void check_mpi(int code, const char* call, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
  throw DistError(call, "MPI error " + std::to_string(code) + ": " + std::string(text, len), file, line);
}

}  // namespace reel
