// Work: the handle an asynchronous collective returns.
//
// Contract (every backend):
// - wait() blocks the calling thread until the operation has finished, runs its
//   completion steps once on that thread, and rethrows the operation's error, if any.
//   It is idempotent: later calls return at once (or rethrow the same error).
//   MPI: finished means MPI completed the request; the completion step copies a
//   host-staged result back into a CUDA tensor. NCCL: finished means the operation's end
//   event fired on the GPU (a host-side wait, polled so that an asynchronous NCCL error
//   or the timeout aborts the communicator instead of hanging); there is no completion
//   step, and the result is then visible to every stream.
// - Outputs may be read, and inputs overwritten, only after wait() returns.
// - completed() never blocks; true once the backend finished the operation, successfully
//   or not. It does not run the completion step: call wait() before using the result.
// - error() is the failure, or null while running or after success.
// - A Work keeps the tensors it touches alive until it has completed.
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
  bool completed();
  std::exception_ptr error();

  // What this work is, for the hang watchdog ("all_reduce #12 on world ...").
  void set_description(std::string what) { description_ = std::move(what); }

  // Adds a step to run on the waiting thread after the backend finished successfully
  // (in the order added). Backends use it for copy-back and stream ordering.
  void then(std::function<void()> step);

 protected:
  // Blocks until the backend finished; throws the backend's error.
  virtual void block() = 0;
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
