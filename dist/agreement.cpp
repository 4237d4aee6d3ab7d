#include "reel/dist/agreement.hpp"

#include <ATen/ATen.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "reel/dist/logging.hpp"

namespace reel {
namespace {

// Collective over comm: every rank's `text` (cut to bytes - 1), in rank order.
std::vector<std::string> gather_texts(Communicator& comm, const std::string& text, int64_t bytes) {
  auto mine = at::zeros({bytes}, at::kByte);
  std::memcpy(mine.data_ptr(), text.data(), std::min<size_t>(text.size(), bytes - 1));
  auto all = at::empty({bytes * comm.size()}, at::kByte).to(comm.device());
  comm.all_gather(mine.to(comm.device()), all);
  const auto host = all.cpu();
  std::vector<std::string> out;
  for (int r = 0; r < comm.size(); ++r)
    out.emplace_back(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()) + r * bytes);
  return out;
}

}  // namespace

bool any_rank(Communicator& comm, bool flag) {
  auto any = at::full({1}, flag ? 1.0 : 0.0, at::TensorOptions(at::kDouble).device(comm.device()));
  comm.all_reduce(any, ReduceOp::kMax);
  return any.cpu().item<double>() > 0;
}

int lowest_rank(Communicator& comm, bool flag) {
  // MAX of (size - rank) over the ranks whose flag is set names the lowest of them.
  auto top = at::full({1}, flag ? double(comm.size() - comm.rank()) : 0.0,
                      at::TensorOptions(at::kDouble).device(comm.device()));
  comm.all_reduce(top, ReduceOp::kMax);
  const int t = static_cast<int>(top.cpu().item<double>());
  return t > 0 ? comm.size() - t : -1;
}

std::string broadcast_text(Communicator& comm, const std::string& text, int root) {
  const auto dev = comm.device();
  auto size = at::full({1}, static_cast<int64_t>(text.size()), at::TensorOptions(at::kLong).device(dev));
  comm.broadcast(size, root);
  const int64_t n = size.cpu().item<int64_t>();
  if (n == 0) return "";  // the same size on every rank: all return here
  auto bytes = at::zeros({n}, at::kByte);
  if (comm.rank() == root) std::memcpy(bytes.data_ptr(), text.data(), text.size());
  bytes = bytes.to(dev);
  comm.broadcast(bytes, root);
  const auto host = bytes.cpu();
  return std::string(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()), host.numel());
}

std::string from_rank0(Communicator& comm, const std::string& text) { return broadcast_text(comm, text, 0); }

std::string first_error(Communicator& comm, const std::string& error) {
  const int first = lowest_rank(comm, !error.empty());
  if (first < 0) return "";  // the common case costs one 8-byte reduction
  const std::string reason = broadcast_text(comm, error, first);
  return first == comm.rank() ? reason : cat(reason, " (rank ", first, ")");
}

void throw_if_any_failed(Communicator& comm, const std::string& error, const std::string& what) {
  const std::string first = first_error(comm, error);
  if (first.empty()) return;
  throw std::runtime_error(what.empty() ? first : what + " failed: " + first);
}

std::string desync_report(Communicator& comm, const Watchdog::Fingerprint& mine) {
  const auto dev = comm.device();
  const int n = comm.size();
  auto local = at::tensor({static_cast<int64_t>(mine.count), static_cast<int64_t>(mine.hash)}, at::kLong).to(dev);
  auto all = at::empty({2 * n}, local.options());
  comm.all_gather(local, all);
  const auto last = gather_texts(comm, mine.last, 200);  // each rank's last collective, for the report
  const auto a = all.cpu();
  const int64_t* v = a.data_ptr<int64_t>();
  std::string report;
  for (int r = 1; r < n; ++r) {
    if (v[2 * r] == v[0] && v[2 * r + 1] == v[1]) continue;
    report += cat("\n  rank ", r, ": ", v[2 * r], " collectives, last ", last[r]);
  }
  if (report.empty()) return "";
  return cat("the ranks that differ from rank 0 (", v[0], " collectives, last ", last[0], "):", report,
             "\n  the job would hang at the next collective they do not share");
}

bool job_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

int job_world_size() {
  int size = 1;
  if (job_running()) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

int job_rank() {
  int rank = 0;
  if (job_running()) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void abort_job(int code) {
  if (job_running()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; without MPI, this process is the job
}

}  // namespace reel
