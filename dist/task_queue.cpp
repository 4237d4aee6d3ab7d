#include "reel/dist/task_queue.hpp"

namespace reel {

void TaskWork::block() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->cv.wait(lock, [&] { return state_->done; });
  if (state_->error) std::rethrow_exception(state_->error);
}

bool TaskWork::test() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->done && state_->error) std::rethrow_exception(state_->error);
  return state_->done;
}

TaskQueue::TaskQueue() : worker_([this] { loop(); }) {}

TaskQueue::~TaskQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::shared_ptr<TaskWork> TaskQueue::submit(std::function<void()> fn) {
  auto state = std::make_shared<TaskState>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(std::move(fn), state);
  }
  cv_.notify_all();
  return std::make_shared<TaskWork>(state);
}

void TaskQueue::run_inline(const std::function<void()>& fn) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ++inline_waiting_;
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
    --inline_waiting_;
    busy_ = true;
  }
  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = false;
    // Waking the idle worker for nothing costs a context switch per blocking call.
    wake = !queue_.empty() || inline_waiting_ > 0;
  }
  if (wake) cv_.notify_all();
  if (error) std::rethrow_exception(error);
}

void TaskQueue::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return (!queue_.empty() && !busy_) || (stop_ && queue_.empty()); });
    if (queue_.empty()) return;  // stop_ and nothing left
    auto [fn, state] = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    std::exception_ptr error;
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> done_lock(state->mutex);
      state->done = true;
      state->error = error;
    }
    state->cv.notify_all();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace reel
