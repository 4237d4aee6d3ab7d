#include "reel/dist/mpi_communicator.hpp"

#include <ATen/ATen.h>

#include <climits>

#include "reel/dist/error.hpp"
#include "reel/dist/mpi_half.hpp"
#include "reel/dist/trace.hpp"

namespace reel {
namespace {

// The same types move data and reduce it; bf16 and fp16 are reel's own 16-bit types,
// reduced by reel's ops in their own width (dist/mpi_half.hpp), as NCCL reduces them.
MPI_Datatype mpi_type(at::ScalarType t) {
  try {
    return mpi_reduce_type(t);
  } catch (const std::invalid_argument& e) {
    throw_invalid("mpi", e.what());
  }
}

int count_of(const std::string& op, int64_t n) {
  if (n > INT_MAX) {
    throw_invalid(op, std::to_string(n) + " elements exceed MPI's int count; split the call");
  }
  return static_cast<int>(n);
}

// Host buffer holding t's data (t itself on CPU; a copy of a CUDA tensor).
at::Tensor host_copy(const at::Tensor& t) { return t.is_cuda() ? t.cpu() : t; }
// Host buffer to receive into for t (t itself on CPU; fresh memory for a CUDA tensor).
at::Tensor host_target(const at::Tensor& t) {
  return t.is_cuda() ? at::empty(t.sizes(), t.options().device(at::kCPU)) : t;
}
// Completion step copying a staged host result back into a CUDA tensor (none on CPU).
std::function<void()> copy_back(const at::Tensor& dst, const at::Tensor& host) {
  if (!dst.is_cuda()) return nullptr;
  return [dst, host] { dst.copy_(host); };
}

bool same_data(const at::Tensor& a, const at::Tensor& b) { return a.data_ptr() == b.data_ptr(); }

bool overlaps(const at::Tensor& a, const at::Tensor& b) {
  auto a0 = static_cast<const char*>(a.data_ptr()), b0 = static_cast<const char*>(b.data_ptr());
  return a.numel() && b.numel() && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

MPI_Op mpi_op(ReduceOp op, at::ScalarType t) { return mpi_reduce_op(t, op == ReduceOp::kMax); }

// A fresh host buffer holding t's data.
at::Tensor reduction_copy(const at::Tensor& t) { return t.to(at::kCPU, t.scalar_type(), false, /*copy=*/true); }

}  // namespace

OwnedComm duplicate_comm(MPI_Comm comm) {
  OwnedComm own{MPI_COMM_NULL, 0, 0};
  REEL_MPI_CHECK(MPI_Comm_dup(comm, &own.comm));
  REEL_MPI_CHECK(MPI_Comm_set_errhandler(own.comm, MPI_ERRORS_RETURN));
  REEL_MPI_CHECK(MPI_Comm_rank(own.comm, &own.rank));
  REEL_MPI_CHECK(MPI_Comm_size(own.comm, &own.size));
  return own;
}

std::shared_ptr<MpiCommunicator> MpiCommunicator::create(MPI_Comm comm, CommOptions options) {
  const OwnedComm own = duplicate_comm(comm);
  return std::shared_ptr<MpiCommunicator>(new MpiCommunicator(own.comm, own.rank, own.size, options));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int rank, int size, CommOptions options)
    : Communicator(rank, size, options), comm_(comm), queue_(std::make_shared<TaskQueue>()) {}

void MpiCommunicator::share_progress(Communicator& other) {
  auto* mpi = dynamic_cast<MpiCommunicator*>(&other);
  if (!mpi) throw_invalid("share_progress", "the other communicator is not an MPI one");
  queue_->run_inline([] {});  // whatever this one had queued is done (nothing, by contract)
  queue_ = mpi->queue_;
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // After MPI_Finalize the handle is gone with MPI; freeing it would be an error.
  if (!finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::check_device(const std::string& op, const at::Tensor& t) const {
  if (!t.is_cpu() && !t.is_cuda()) {
    throw_invalid(op,
                  "tensor on " + t.device().str() + ": the mpi backend takes CPU tensors (or CUDA tensors, staged)");
  }
}

WorkPtr MpiCommunicator::launch(std::function<void()> fn, std::function<void()> after) {
  if (auto traced = trace::take(this)) {  // tracing: the span is the MPI call, on whichever thread runs it
    fn = [fn = std::move(fn), traced, queued = !blocking_call()] {
      if (queued) trace::name_thread("comm progress");
      trace::CollectiveSpan span(traced);
      fn();
    };
  }
  WorkPtr work;
  if (blocking_call()) {
    queue_->run_inline(fn);
    work = std::make_shared<DoneWork>();
  } else {
    work = queue_->submit(std::move(fn));
  }
  if (after) work->then(std::move(after));
  return work;
}

WorkPtr MpiCommunicator::do_all_reduce(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  const int count = count_of("all_reduce", input.numel());
  const int n = size();
  // direct: MPI works on the caller's memory; otherwise (CUDA) on a staged copy that
  // wait() copies back into output.
  const bool direct = input.is_cpu() && output.is_cpu();
  if (direct) {
    const bool in_place = same_data(input, output);
    return launch([=] {
      REEL_MPI_CHECK(MPI_Allreduce(in_place ? MPI_IN_PLACE : input.data_ptr(), output.data_ptr(), count,
                                   mpi_type(input.scalar_type()), mpi_op(op, input.scalar_type()), comm_));
      if (op == ReduceOp::kAvg) output.div_(n);
    });
  }
  at::Tensor buf = reduction_copy(input);
  auto fn = [=] {
    REEL_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), count, mpi_type(buf.scalar_type()),
                                 mpi_op(op, buf.scalar_type()), comm_));
    if (op == ReduceOp::kAvg) buf.div_(n);
  };
  return launch(fn, [output, buf] { output.copy_(buf.view(output.sizes())); });
}

WorkPtr MpiCommunicator::do_all_gather(const at::Tensor& input, const at::Tensor& output) {
  const int count = count_of("all_gather", input.numel());
  count_of("all_gather", output.numel());
  const auto offset = static_cast<int64_t>(rank()) * input.numel() * input.element_size();
  const bool in_place = input.is_cpu() && static_cast<const char*>(input.data_ptr()) ==
                                              static_cast<const char*>(output.data_ptr()) + offset;
  if (!in_place && input.is_cpu() && output.is_cpu() && overlaps(input, output)) {
    throw_invalid("all_gather", "input overlaps output other than as this rank's slice");
  }
  at::Tensor in = host_copy(input), out = host_target(output);
  const MPI_Datatype type = mpi_type(input.scalar_type());
  auto fn = [=] {
    REEL_MPI_CHECK(
        MPI_Allgather(in_place ? MPI_IN_PLACE : in.data_ptr(), count, type, out.data_ptr(), count, type, comm_));
  };
  return launch(fn, copy_back(output, out));
}

WorkPtr MpiCommunicator::do_reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  const int count = count_of("reduce_scatter", output.numel());
  count_of("reduce_scatter", input.numel());
  const int n = size();
  const bool direct = input.is_cpu() && output.is_cpu() && !overlaps(input, output);
  if (direct) {
    return launch([=] {
      REEL_MPI_CHECK(MPI_Reduce_scatter_block(input.data_ptr(), output.data_ptr(), count, mpi_type(input.scalar_type()),
                                              mpi_op(op, input.scalar_type()), comm_));
      if (op == ReduceOp::kAvg) output.div_(n);
    });
  }
  // Staged or in place (output inside input): reduce into a temporary that wait() copies
  // into output.
  at::Tensor src = input.is_cpu() ? input : reduction_copy(input);
  at::Tensor dst = at::empty({count}, src.options());
  auto fn = [=] {
    REEL_MPI_CHECK(MPI_Reduce_scatter_block(src.data_ptr(), dst.data_ptr(), count, mpi_type(src.scalar_type()),
                                            mpi_op(op, src.scalar_type()), comm_));
    if (op == ReduceOp::kAvg) dst.div_(n);
  };
  return launch(fn, [output, dst] { output.copy_(dst.view(output.sizes())); });
}

WorkPtr MpiCommunicator::do_all_to_all(const at::Tensor& input, const at::Tensor& output,
                                       const std::vector<int64_t>& send_counts,
                                       const std::vector<int64_t>& recv_counts) {
  const std::string op = "all_to_all";
  count_of(op, input.numel());
  count_of(op, output.numel());
  const bool equal = send_counts == recv_counts && std::all_of(send_counts.begin(), send_counts.end(),
                                                               [&](int64_t c) { return c == send_counts[0]; });
  const bool in_place = input.is_cpu() && same_data(input, output);
  if (!in_place && input.is_cpu() && output.is_cpu() && overlaps(input, output)) {
    throw_invalid(op, "input and output overlap without being the same tensor");
  }
  at::Tensor in = host_copy(input), out = host_target(output);
  const MPI_Datatype type = mpi_type(input.scalar_type());
  std::vector<int> sc, rc, sd, rd;
  for (size_t r = 0, s = 0, d = 0; r < send_counts.size(); ++r) {
    sc.push_back(static_cast<int>(send_counts[r]));
    rc.push_back(static_cast<int>(recv_counts[r]));
    sd.push_back(static_cast<int>(s));
    rd.push_back(static_cast<int>(d));
    s += send_counts[r];
    d += recv_counts[r];
  }
  auto fn = [=] {
    const void* send = in_place ? MPI_IN_PLACE : in.data_ptr();
    if (equal) {
      REEL_MPI_CHECK(MPI_Alltoall(send, sc[0], type, out.data_ptr(), rc[0], type, comm_));
    } else {
      REEL_MPI_CHECK(
          MPI_Alltoallv(send, sc.data(), sd.data(), type, out.data_ptr(), rc.data(), rd.data(), type, comm_));
    }
  };
  return launch(fn, copy_back(output, out));
}

WorkPtr MpiCommunicator::do_broadcast(const at::Tensor& tensor, int root) {
  const int count = count_of("broadcast", tensor.numel());
  at::Tensor buf = host_copy(tensor);
  const MPI_Datatype type = mpi_type(tensor.scalar_type());
  auto fn = [=] { REEL_MPI_CHECK(MPI_Bcast(buf.data_ptr(), count, type, root, comm_)); };
  return launch(fn, copy_back(tensor, buf));
}

namespace {

// An MPI request: posted at once, completed by MPI_Wait/MPI_Test.
class RequestWork final : public Work {
 public:
  RequestWork(MPI_Request request, at::Tensor keep) : request_(request), keep_(std::move(keep)) {}

 protected:
  void block() override { REEL_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE)); }
  bool test() override {
    int flag = 0;
    REEL_MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    return flag != 0;
  }

 private:
  MPI_Request request_;
  at::Tensor keep_;  // the buffer MPI reads or writes until completion
};

}  // namespace

WorkPtr MpiCommunicator::do_send(const at::Tensor& tensor, int peer, int tag) {
  trace::CollectiveSpan span(trace::take(this));  // posting; the wait shows the transfer
  const int count = count_of("send", tensor.numel());
  at::Tensor buf = host_copy(tensor);
  MPI_Request request;
  REEL_MPI_CHECK(MPI_Isend(buf.data_ptr(), count, mpi_type(tensor.scalar_type()), peer, tag, comm_, &request));
  return std::make_shared<RequestWork>(request, buf);
}

WorkPtr MpiCommunicator::do_recv(const at::Tensor& tensor, int peer, int tag) {
  trace::CollectiveSpan span(trace::take(this));  // posting; the wait shows the transfer
  const int count = count_of("recv", tensor.numel());
  at::Tensor buf = host_target(tensor);
  MPI_Request request;
  REEL_MPI_CHECK(MPI_Irecv(buf.data_ptr(), count, mpi_type(tensor.scalar_type()), peer, tag, comm_, &request));
  auto work = std::make_shared<RequestWork>(request, buf);
  if (auto step = copy_back(tensor, buf)) work->then(step);
  return work;
}

WorkPtr MpiCommunicator::do_sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag) {
  trace::CollectiveSpan span(trace::take(this));  // posting both; the wait shows the transfer
  // Both posted before either is waited on: a ring of these cannot deadlock.
  WorkPtr receiving = do_recv(recv, src, tag);
  WorkPtr sending = do_send(send, dst, tag);
  return std::make_shared<AllOfWork>(std::vector<WorkPtr>{sending, receiving});
}

WorkPtr MpiCommunicator::do_barrier() {
  return launch([=] { REEL_MPI_CHECK(MPI_Barrier(comm_)); });
}

std::shared_ptr<Communicator> MpiCommunicator::do_split(int color, int key) {
  MPI_Comm sub = MPI_COMM_NULL;
  queue_->run_inline([&] { REEL_MPI_CHECK(MPI_Comm_split(comm_, color, key, &sub)); });
  REEL_MPI_CHECK(MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN));
  int rank = 0, size = 0;
  REEL_MPI_CHECK(MPI_Comm_rank(sub, &rank));
  REEL_MPI_CHECK(MPI_Comm_size(sub, &size));
  return std::shared_ptr<MpiCommunicator>(new MpiCommunicator(sub, rank, size, options()));
}

}  // namespace reel
