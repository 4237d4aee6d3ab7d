// Work: the handle an asynchronous collective returns.
//
// Contract (every backend):
// - wait() makes the result available to the calling thread and to work it queues on
//   its current CUDA stream from then on, runs the completion steps once on that thread,
//   and rethrows the operation's error, if known by then. Idempotent: later calls return
//   at once (or rethrow the same error).
//   MPI: the thread blocks until MPI completed the request (the collective ran on the
//   communicator's progress thread, task_queue.hpp); the completion step copies a
//   host-staged result back into a CUDA tensor, on the current stream.
//   NCCL: the host does not wait: the current stream waits (cudaStreamWaitEvent) on an
//   event recorded after the collective on the communicator's own stream, so the
//   kernels queued next run after it. Faults are found by the process's NCCL monitor
//   thread, which polls every operation in flight (an asynchronous NCCL error, or the
//   timeout) and aborts every NCCL communicator of the process; the stream then
//   proceeds, and every later call or synchronize() throws the first fault's reason.
// - Outputs may be read, and inputs overwritten, by the calling thread or on its current
//   stream, only after wait() returns; on another stream, only after synchronize().
// - synchronize() waits, then blocks the host until the operation has finished on the
//   device too (MPI: the same as wait()), and rethrows its error.
// - completed() never blocks; true once the backend finished the operation, successfully
//   or not. It does not run the completion step: call wait() before using the result.
// - error() is the failure, or null while running or after success.
// - A Work keeps the tensors it touches alive until it has completed; on NCCL the caching
//   allocator also knows the collective's stream uses them (recordStream), so memory
//   freed by the caller is not reused before that stream is done with it.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace reel {

class Work {
 public:
  virtual ~Work() = default;
  Work() = default;
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  void wait();
  void synchronize();
  bool completed();
  std::exception_ptr error();

  // What this work is, for the hang watchdog ("all_reduce #12 on world ...").
  void set_description(std::string what) { description_ = std::move(what); }

  // Adds a step to run on the waiting thread after the backend finished successfully
  // (in the order added). Backends use it for copy-back and stream ordering.
  void then(std::function<void()> step);

 protected:
  // Blocks until the backend finished, or (ordered_only()) orders the current stream
  // after it; throws the backend's error.
  virtual void block() = 0;
  // block() orders the caller's stream after the operation without waiting for it, so
  // wait() does not mark it finished (completed() keeps polling test()).
  virtual bool ordered_only() const { return false; }
  // Polls the backend without blocking; true when finished; throws the backend's error.
  virtual bool test() = 0;

 private:
  void finish(std::exception_ptr error);

  std::mutex mutex_;
  bool backend_done_ = false;  // block()/test() reported completion
  bool waited_ = false;        // completion steps ran (or the error was recorded)
  std::exception_ptr error_;
  std::function<void()> steps_;
  std::string description_;
};

using WorkPtr = std::shared_ptr<Work>;

// A Work that is already finished (e.g. a collective on zero elements, or a
// communicator of one rank): wait() only runs the completion steps.
class DoneWork final : public Work {
 protected:
  void block() override {}
  bool test() override { return true; }
};

// Finishes when every part has finished; wait() waits for each part (running their
// completion steps) in order and rethrows the first error.
class AllOfWork final : public Work {
 public:
  explicit AllOfWork(std::vector<WorkPtr> parts);

 protected:
  void block() override;
  bool test() override;

 private:
  std::vector<WorkPtr> parts_;
};

}  // namespace reel
