// The NCCL backend: CUDA tensors, one NCCL communicator per reel communicator.
//
// Streams: every call runs on the communicator's own stream. It first waits (event) for
// the caller's current stream, so it sees every kernel queued before the call; wait()
// makes the caller's current stream wait for the operation's end event and returns at
// once (the host does not spin; synchronize() does, for the few that need the host to
// know). Tensors are recorded on the NCCL stream for the caching allocator and kept
// alive until the operation ends.
//
// Faults: the process's NCCL monitor thread polls every operation a wait() left in
// flight (end event, ncclCommGetAsyncError, the configured timeout CommOptions::timeout);
// synchronize() and completed() poll the same. On an error or a timeout it aborts every
// NCCL communicator of the process (AbortRegistry: ncclCommAbort each, so no kernel spins
// forever on a dead peer, a stream waiting on it proceeds, and no destructor hangs); the
// operation's next wait() or synchronize() throws DistError, and every later call on an
// aborted communicator throws at once, with the first fault's reason.
//
// Bootstrap: rank 0 of the MPI communicator draws the ncclUniqueId and broadcasts it over
// MPI; no MASTER_ADDR. Sub-communicators split the MPI communicator and repeat that.
//
// Point to point: a NCCL send blocks its stream until the peer posts the receive, so a
// ring must use sendrecv (one NCCL group), not a send followed by a recv.
#pragma once

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <functional>

#include "reel/dist/communicator.hpp"

namespace reel {

void check_nccl(ncclResult_t result, ncclComm_t comm, const char* call, const char* file, int line);

class NcclCommunicator final : public Communicator {
 public:
  // Collective over comm. Uses the current CUDA device.
  static std::shared_ptr<NcclCommunicator> create(MPI_Comm comm, CommOptions options = {});
  ~NcclCommunicator() override;

  std::string backend() const override { return "nccl"; }
  at::Device device() const override { return device_; }

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
  NcclCommunicator(MPI_Comm mpi, int rank, int size, CommOptions options, ncclComm_t comm, at::Device device);
  // Orders the NCCL stream after the caller's stream, runs launch(stream), records the end.
  WorkPtr enqueue(const std::string& op, std::vector<at::Tensor> tensors,
                  const std::function<void(cudaStream_t)>& launch);

  MPI_Comm mpi_;  // duplicate of the bootstrap communicator, for splits
  ncclComm_t comm_;
  at::Device device_;
  c10::cuda::CUDAStream stream_;
  std::shared_ptr<std::atomic<bool>> aborted_;  // set once, by the registry's abort
  uint64_t abort_id_ = 0;                       // this communicator in AbortRegistry
};

}  // namespace reel

#define REEL_NCCL_CHECK(call, comm) ::reel::check_nccl((call), (comm), #call, __FILE__, __LINE__)
