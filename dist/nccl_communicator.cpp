#include "reel/dist/nccl_communicator.hpp"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "reel/dist/abort_registry.hpp"
#include "reel/dist/error.hpp"
#include "reel/dist/mpi_communicator.hpp"
#include "reel/dist/trace.hpp"

namespace reel {

void check_nccl(ncclResult_t result, ncclComm_t comm, const char* call, const char* file, int line) {
  if (result == ncclSuccess) return;
  std::string detail = std::string("NCCL error ") + std::to_string(result) + ": " + ncclGetErrorString(result);
  const char* last = ncclGetLastError(comm);
  if (last && *last) detail += " (" + std::string(last) + ")";
  throw DistError(call, detail, file, line);
}

namespace {

void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return;
  throw DistError(call, std::string("CUDA error: ") + cudaGetErrorString(err), file, line);
}
#define REEL_CUDA_CHECK(call) check_cuda((call), #call, __FILE__, __LINE__)

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kLong:
      return ncclInt64;
    case at::kInt:
      return ncclInt32;
    case at::kChar:
      return ncclInt8;
    case at::kByte:
      return ncclUint8;
    default:
      throw_invalid("nccl", std::string("no NCCL type for ") + c10::toString(t));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

[[noreturn]] void throw_aborted(const std::string& op) {
  throw DistError(op, "the NCCL communicator was aborted after a fault (" + AbortRegistry::process().reason() + ")",
                  __FILE__, __LINE__);
}

// One enqueued NCCL operation: finished when its end event has fired. wait() orders the
// caller's current stream after that event and hands the operation to the monitor.
class NcclWork final : public Work, public std::enable_shared_from_this<NcclWork> {
 public:
  NcclWork(std::string op, ncclComm_t comm, at::Device device, std::vector<at::Tensor> keep,
           std::chrono::milliseconds timeout, std::shared_ptr<std::atomic<bool>> aborted)
      : op_(std::move(op)),
        comm_(comm),
        device_(device),
        keep_(std::move(keep)),
        timeout_(timeout),
        aborted_(std::move(aborted)),
        start_(std::chrono::steady_clock::now()) {}

  at::cuda::CUDAEvent& end() { return end_; }
  ncclComm_t comm() const { return comm_; }

  // True once the end event fired; throws the fault it finds (and aborts every NCCL
  // communicator of the process), or the one the monitor found first. Any thread.
  bool poll() {
    std::lock_guard<std::mutex> lock(poll_mutex_);
    if (fault_) std::rethrow_exception(fault_);
    if (end_.query()) {
      keep_.clear();
      return true;
    }
    try {
      check_faults();
    } catch (...) {
      fault_ = std::current_exception();
      throw;
    }
    return false;
  }

 protected:
  bool test() override { return poll(); }
  void block() override;  // orders the current stream; the monitor watches the rest
  bool ordered_only() const override { return true; }

 private:
  // On an asynchronous NCCL error or when the timeout passed, aborts every NCCL
  // communicator of the process (AbortRegistry): the others may wait on the same dead peer.
  void check_faults() {
    if (aborted_->load()) throw_aborted(op_);
    ncclResult_t async = ncclSuccess;
    REEL_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async), comm_);
    std::string reason;
    if (async != ncclSuccess && async != ncclInProgress) {
      reason = std::string("asynchronous NCCL error: ") + ncclGetErrorString(async);
    } else if (std::chrono::steady_clock::now() - start_ > timeout_) {
      reason =
          "timed out after " + std::to_string(timeout_.count()) + " ms (a rank may have failed or skipped this call)";
    }
    if (reason.empty()) return;
    const auto aborted = AbortRegistry::process().abort_all(op_ + ": " + reason);
    throw DistError(op_,
                    reason + "; aborted " + std::to_string(aborted.size()) + " NCCL communicator(s) of this process",
                    __FILE__, __LINE__);
  }

  std::string op_;
  ncclComm_t comm_;
  at::Device device_;
  std::mutex poll_mutex_;  // poll() runs on the caller's thread and on the monitor's
  std::vector<at::Tensor> keep_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<std::atomic<bool>> aborted_;
  std::chrono::steady_clock::time_point start_;
  std::exception_ptr fault_;  // the first fault poll() found
  at::cuda::CUDAEvent end_;
};

// The process's NCCL monitor: one thread that polls every operation a wait() left in
// flight (its consumer's stream waits on it; no host thread does), so that an
// asynchronous error or a timeout aborts the communicators instead of leaving a stream
// stuck behind a dead peer. It holds each operation (and its tensors) until it ends.
class NcclMonitor {
 public:
  // Never destroyed: its detached thread may run during static destruction.
  static NcclMonitor& process() {
    static NcclMonitor* monitor = new NcclMonitor();
    return *monitor;
  }
  void watch(std::shared_ptr<NcclWork> work) {
    std::lock_guard<std::mutex> lock(mutex_);
    works_.push_back(std::move(work));
    cv_.notify_one();
  }
  // Drops the operations of a communicator being destroyed (its handle goes with it).
  void forget(ncclComm_t comm) {
    std::lock_guard<std::mutex> lock(mutex_);
    works_.erase(std::remove_if(works_.begin(), works_.end(), [&](const auto& w) { return w->comm() == comm; }),
                 works_.end());
  }

 private:
  NcclMonitor() {
    std::thread([this] { loop(); }).detach();
  }
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return !works_.empty(); });
      for (size_t i = 0; i < works_.size();) {
        bool done = true;
        try {
          done = works_[i]->poll();
        } catch (...) {  // recorded in the work: its next wait or synchronize rethrows it
        }
        if (done) {
          works_.erase(works_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<NcclWork>> works_;
};

void NcclWork::block() {
  if (poll()) return;  // already done (or throws the fault found)
  // The kernels the caller queues next run after the collective; the host goes on.
  end_.block(c10::cuda::getCurrentCUDAStream(device_.index()));
  NcclMonitor::process().watch(shared_from_this());
}

ncclComm_t init_nccl(MPI_Comm mpi, int rank, int size) {
  ncclUniqueId id;
  if (rank == 0) REEL_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
  REEL_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi));
  ncclComm_t comm = nullptr;
  REEL_NCCL_CHECK(ncclCommInitRank(&comm, size, id, rank), comm);
  return comm;
}

}  // namespace

std::shared_ptr<NcclCommunicator> NcclCommunicator::create(MPI_Comm comm, CommOptions options) {
  const OwnedComm own = duplicate_comm(comm);
  int device = 0;
  REEL_CUDA_CHECK(cudaGetDevice(&device));
  ncclComm_t nccl = init_nccl(own.comm, own.rank, own.size);
  return std::shared_ptr<NcclCommunicator>(new NcclCommunicator(
      own.comm, own.rank, own.size, options, nccl, at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device))));
}

NcclCommunicator::NcclCommunicator(MPI_Comm mpi, int rank, int size, CommOptions options, ncclComm_t comm,
                                   at::Device device)
    : Communicator(rank, size, options),
      mpi_(mpi),
      comm_(comm),
      device_(device),
      stream_(c10::cuda::getStreamFromPool(false, device.index())),
      aborted_(std::make_shared<std::atomic<bool>>(false)) {
  // Runs under the registry's lock, which remove() in the destructor also takes: the
  // communicator is alive whenever this runs.
  abort_id_ = AbortRegistry::process().add([this] {
    if (!aborted_->exchange(true)) ncclCommAbort(comm_);
    return label() + " (nccl)";
  });
}

NcclCommunicator::~NcclCommunicator() {
  NcclMonitor::process().forget(comm_);        // the monitor polls its handle no more
  AbortRegistry::process().remove(abort_id_);  // from here on no abort can run
  if (!aborted_->load()) ncclCommDestroy(comm_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&mpi_);
}

void NcclCommunicator::check_device(const std::string& op, const at::Tensor& t) const {
  if (t.device() != device_) {
    throw_invalid(
        op, "tensor on " + t.device().str() + ": the nccl backend of this rank takes " + device_.str() + " tensors");
  }
}

WorkPtr NcclCommunicator::enqueue(const std::string& op, std::vector<at::Tensor> tensors,
                                  const std::function<void(cudaStream_t)>& launch) {
  // Tracing: the host's enqueueing (an NVTX range too); the kernel runs later on stream_.
  trace::CollectiveSpan span(trace::take(this));
  if (aborted_->load()) throw_aborted(op);
  c10::cuda::CUDAGuard guard(device_);
  // The NCCL stream must see every kernel the caller queued before this call.
  at::cuda::CUDAEvent ready;
  ready.record(c10::cuda::getCurrentCUDAStream(device_.index()));
  ready.block(stream_);
  for (const auto& t : tensors) {
    if (t.numel()) c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), stream_);
  }
  launch(stream_.stream());
  auto work = std::make_shared<NcclWork>(op, comm_, device_, std::move(tensors), options().timeout, aborted_);
  work->end().record(stream_);
  return work;
}

WorkPtr NcclCommunicator::do_all_reduce(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  return enqueue("all_reduce", {input, output}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclAllReduce(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input.scalar_type()),
                                  nccl_op(op), comm_, s),
                    comm_);
  });
}

WorkPtr NcclCommunicator::do_all_gather(const at::Tensor& input, const at::Tensor& output) {
  return enqueue("all_gather", {input, output}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(
        ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input.scalar_type()), comm_, s),
        comm_);
  });
}

WorkPtr NcclCommunicator::do_reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  return enqueue("reduce_scatter", {input, output}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(),
                                      nccl_type(input.scalar_type()), nccl_op(op), comm_, s),
                    comm_);
  });
}

WorkPtr NcclCommunicator::do_all_to_all(const at::Tensor& input, const at::Tensor& output,
                                        const std::vector<int64_t>& send_counts,
                                        const std::vector<int64_t>& recv_counts) {
  // NCCL has no in-place all-to-all: read from a copy when input is output.
  const at::Tensor src = input.data_ptr() == output.data_ptr() ? input.clone() : input;
  const auto type = nccl_type(input.scalar_type());
  const auto esize = static_cast<int64_t>(input.element_size());
  return enqueue("all_to_all", {src, output}, [&](cudaStream_t s) {
    auto* in = static_cast<char*>(src.data_ptr());
    auto* out = static_cast<char*>(output.data_ptr());
    REEL_NCCL_CHECK(ncclGroupStart(), comm_);
    for (int r = 0; r < size(); ++r) {
      REEL_NCCL_CHECK(ncclSend(in, send_counts[r], type, r, comm_, s), comm_);
      REEL_NCCL_CHECK(ncclRecv(out, recv_counts[r], type, r, comm_, s), comm_);
      in += send_counts[r] * esize;
      out += recv_counts[r] * esize;
    }
    REEL_NCCL_CHECK(ncclGroupEnd(), comm_);
  });
}

WorkPtr NcclCommunicator::do_broadcast(const at::Tensor& tensor, int root) {
  return enqueue("broadcast", {tensor}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()),
                                  root, comm_, s),
                    comm_);
  });
}

// NCCL has no tags: matching is by order between a pair, which the contract already asks.
WorkPtr NcclCommunicator::do_send(const at::Tensor& tensor, int peer, int /*tag*/) {
  return enqueue("send", {tensor}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclSend(tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), peer, comm_, s),
                    comm_);
  });
}

WorkPtr NcclCommunicator::do_recv(const at::Tensor& tensor, int peer, int /*tag*/) {
  return enqueue("recv", {tensor}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclRecv(tensor.data_ptr(), tensor.numel(), nccl_type(tensor.scalar_type()), peer, comm_, s),
                    comm_);
  });
}

WorkPtr NcclCommunicator::do_sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int /*tag*/) {
  return enqueue("sendrecv", {send, recv}, [&](cudaStream_t s) {
    REEL_NCCL_CHECK(ncclGroupStart(), comm_);
    REEL_NCCL_CHECK(ncclSend(send.data_ptr(), send.numel(), nccl_type(send.scalar_type()), dst, comm_, s), comm_);
    REEL_NCCL_CHECK(ncclRecv(recv.data_ptr(), recv.numel(), nccl_type(recv.scalar_type()), src, comm_, s), comm_);
    REEL_NCCL_CHECK(ncclGroupEnd(), comm_);
  });
}

WorkPtr NcclCommunicator::do_barrier() {
  auto token = at::zeros({1}, at::TensorOptions(at::kFloat).device(device_));
  return do_all_reduce(token, token, ReduceOp::kSum);
}

std::shared_ptr<Communicator> NcclCommunicator::do_split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  REEL_MPI_CHECK(MPI_Comm_split(mpi_, color, key, &sub));
  c10::cuda::CUDAGuard guard(device_);
  auto result = create(sub, options());
  REEL_MPI_CHECK(MPI_Comm_free(&sub));
  return result;
}

}  // namespace reel
