// TaskQueue: one worker thread that runs a communicator's blocking backend calls in the
// order they were submitted.
//
// Why a thread: Open MPI's shared-memory transport progresses a non-blocking collective
// only while some thread is inside MPI, so MPI_Iallreduce + compute would not overlap on
// CPU ranks; a blocking MPI_Allreduce on this thread does, and runs the tuned blocking
// algorithms (the non-blocking ones are slower). FIFO order preserves the "same calls in
// the same order on every rank" rule of the communicator.
//
// run_inline() runs a call on the caller's thread when the queue is idle, skipping the
// hand-off latency for blocking calls; it still waits for earlier queued calls first.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "reel/dist/work.hpp"

namespace reel {

// The shared state of one queued call.
struct TaskState {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

class TaskWork final : public Work {
 public:
  explicit TaskWork(std::shared_ptr<TaskState> state) : state_(std::move(state)) {}

 protected:
  void block() override;
  bool test() override;

 private:
  std::shared_ptr<TaskState> state_;
};

class TaskQueue {
 public:
  TaskQueue();
  ~TaskQueue();  // runs what is queued, then joins the worker
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Queues fn; the Work completes when fn has returned (its exception is the Work's error).
  std::shared_ptr<TaskWork> submit(std::function<void()> fn);
  // Runs fn on this thread once every earlier call has finished; rethrows its exception.
  void run_inline(const std::function<void()>& fn);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<std::function<void()>, std::shared_ptr<TaskState>>> queue_;
  bool busy_ = false;       // the worker or an inline caller is inside a backend call
  int inline_waiting_ = 0;  // callers blocked in run_inline()
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace reel
