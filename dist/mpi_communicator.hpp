// The MPI backend: CPU tensors directly; CUDA tensors staged through host memory (the
// MPI is not assumed CUDA-aware), so several ranks can share one GPU in tests.
//
// Collectives run as blocking MPI calls on the communicator's TaskQueue thread (async
// forms) or on the caller's thread when the queue is idle (blocking forms); see
// task_queue.hpp for why. Point-to-point calls are MPI_Isend/MPI_Irecv posted at once on
// the caller's thread, so a ring exchange cannot deadlock behind queued collectives.
// Requires MPI_THREAD_MULTIPLE (Runtime asks for it).
#pragma once

#include <mpi.h>

#include "reel/dist/communicator.hpp"
#include "reel/dist/task_queue.hpp"

namespace reel {

// A communicator of reel's own: a duplicate of comm (isolated from the caller's traffic)
// whose errors are returned rather than fatal. Collective over comm.
struct OwnedComm {
  MPI_Comm comm;
  int rank;
  int size;
};
OwnedComm duplicate_comm(MPI_Comm comm);

class MpiCommunicator final : public Communicator {
 public:
  // Duplicates comm (reel's traffic never mixes with the caller's); errors are returned,
  // not fatal, so they surface as DistError.
  static std::shared_ptr<MpiCommunicator> create(MPI_Comm comm, CommOptions options = {});
  ~MpiCommunicator() override;

  std::string backend() const override { return "mpi"; }
  at::Device device() const override { return at::Device(at::kCPU); }
  MPI_Comm handle() const { return comm_; }
  // Takes other's progress thread (other must be an MpiCommunicator; nothing queued here).
  void share_progress(Communicator& other) override;

 protected:
  WorkPtr do_all_reduce(const at::Tensor& input, const at::Tensor& output, ReduceOp op) override;
  WorkPtr do_all_gather(const at::Tensor& input, const at::Tensor& output) override;
  WorkPtr do_reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) override;
  WorkPtr do_all_to_all(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& send_counts,
                        const std::vector<int64_t>& recv_counts) override;
  WorkPtr do_broadcast(const at::Tensor& tensor, int root) override;
  WorkPtr do_send(const at::Tensor& tensor, int peer, int tag) override;
  WorkPtr do_recv(const at::Tensor& tensor, int peer, int tag) override;
  WorkPtr do_sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag) override;
  WorkPtr do_barrier() override;
  std::shared_ptr<Communicator> do_split(int color, int key) override;
  void check_device(const std::string& op, const at::Tensor& t) const override;

 private:
  MpiCommunicator(MPI_Comm comm, int rank, int size, CommOptions options);
  // Runs fn through the queue (or inline for a blocking call); `after` runs in wait().
  WorkPtr launch(std::function<void()> fn, std::function<void()> after = nullptr);

  MPI_Comm comm_;
  std::shared_ptr<TaskQueue> queue_;  // its own, or shared with another (share_progress)
};

}  // namespace reel
