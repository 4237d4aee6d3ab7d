#include "reel/dist/work.hpp"

#include <chrono>
#include <thread>

#include "reel/dist/trace.hpp"
#include "reel/dist/watchdog.hpp"

namespace reel {

void Work::then(std::function<void()> step) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!steps_) {
    steps_ = std::move(step);
    return;
  }
  steps_ = [first = std::move(steps_), second = std::move(step)] {
    first();
    second();
  };
}

void Work::finish(std::exception_ptr error) {
  backend_done_ = true;
  if (error && !error_) error_ = error;
}

bool Work::completed() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (backend_done_) return true;
  try {
    if (test()) finish(nullptr);
  } catch (...) {
    finish(std::current_exception());
  }
  return backend_done_;
}

void Work::wait() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!waited_) {
    waited_ = true;
    // Tracing: the time this wait exposed (the operation's own span is its backend's).
    trace::ScopedSpan span("wait", "comm.wait");
    span.arg("what", description_);
    if (!backend_done_) {
      try {
        Watchdog::Blocked blocked(description_.empty() ? "an asynchronous operation" : description_);
        block();
        if (!ordered_only()) finish(nullptr);
      } catch (...) {
        finish(std::current_exception());
      }
    }
    if (!error_ && steps_) {
      try {
        steps_();
      } catch (...) {
        error_ = std::current_exception();
      }
      steps_ = nullptr;  // releases the tensors the steps captured
    }
  }
  if (error_) std::rethrow_exception(error_);
}

void Work::synchronize() {
  wait();
  // NCCL only: the host waits for the device, polling (test() reports faults the monitor
  // found, so this ends with the fault's error rather than hanging).
  while (!completed()) std::this_thread::sleep_for(std::chrono::microseconds(20));
  if (auto e = error()) std::rethrow_exception(e);
}

std::exception_ptr Work::error() {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

AllOfWork::AllOfWork(std::vector<WorkPtr> parts) : parts_(std::move(parts)) {
  // Runs the parts' own completion steps even when test() saw them finish first.
  then([parts = parts_] {
    for (auto& part : parts) part->wait();
  });
}

void AllOfWork::block() {
  for (auto& part : parts_) part->wait();
}

bool AllOfWork::test() {
  bool all = true;
  for (auto& part : parts_) {
    if (!part->completed()) {
      all = false;
    } else if (auto error = part->error()) {
      std::rethrow_exception(error);
    }
  }
  return all;
}

}  // namespace reel
