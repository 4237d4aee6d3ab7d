#include "reel/data/loader.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "reel/data/video_file.hpp"
#include "reel/dist/require.hpp"
#include "reel/model/seed.hpp"

namespace reel {

SampleLoader::SampleLoader(LoaderConfig config, DataPosition start) : config_(std::move(config)), position_(start) {
  auto& c = config_;
  reader_ = c.open ? c.open(c.path) : std::make_unique<VideoReader>(c.path);
  const int64_t n = reader_->sample_count();
  if (c.count < 0) c.count = n - c.first;
  const Require need{"data loader (" + c.path + "): "};
  need(c.first >= 0 && c.count > 0 && c.first + c.count <= n,
       "clip range [" + std::to_string(c.first) + ", " + std::to_string(c.first + c.count) +
           ") is not inside the file's " + std::to_string(n) + " clips");
  need(c.shares >= 1 && c.share >= 0 && c.share < c.shares,
       "share " + std::to_string(c.share) + " of " + std::to_string(c.shares));
  need(c.global_batch >= 1 && c.global_batch % c.shares == 0, "global batch " + std::to_string(c.global_batch) +
                                                                  " does not divide over " + std::to_string(c.shares) +
                                                                  " data-parallel groups");
  if (c.step_clips == 0) c.step_clips = c.global_batch;
  need(c.step_clips >= c.global_batch && c.step_clips % c.global_batch == 0 && c.step_clips <= c.count,
       "a step of " + std::to_string(c.step_clips) + " clips must be a whole number of " +
           std::to_string(c.global_batch) + "-clip micro-batches within the " + std::to_string(c.count) + " clips");
  need(c.global_batch <= c.count,
       "global batch " + std::to_string(c.global_batch) + " exceeds the " + std::to_string(c.count) + " clips");
  need(start.cursor >= 0 && start.cursor <= c.count && start.epoch >= 0, "invalid start position");
  if (c.prefetch > 0) worker_ = std::thread([this] { prefetch_loop(); });
}

SampleLoader::~SampleLoader() { stop_prefetch(); }

void SampleLoader::stop_prefetch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::vector<int64_t> SampleLoader::order(int64_t epoch) const {
  auto idx = at::arange(config_.count, at::kLong);
  if (config_.shuffle) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(config_.seed, epoch, 0x6c6f6164));
    idx = at::randperm(config_.count, gen, at::kLong);
  }
  std::vector<int64_t> out(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + config_.count);
  for (auto& i : out) i += config_.first;
  return out;
}

// The next batch starts here: a partial global batch at the end of an epoch is dropped.
DataPosition SampleLoader::advance(DataPosition at) const {
  // A step starting here must fit whole; a micro-batch within a step always does.
  if (at.cursor % config_.step_clips == 0 && at.cursor + config_.step_clips > config_.count) return {at.epoch + 1, 0};
  if (at.cursor + config_.global_batch > config_.count)
    return {at.epoch + 1, 0};  // a position saved by a run with other steps
  return at;
}

Batch SampleLoader::read_at(DataPosition at) {
  at = advance(at);
  const auto global = order(at.epoch);
  const int64_t local = config_.global_batch / config_.shares;
  const int64_t begin = at.cursor + config_.share * local;
  std::vector<int64_t> ids(global.begin() + begin, global.begin() + begin + local);
  return {reader_->read_samples(ids), ids, {at.epoch, at.cursor + config_.global_batch}};
}

void SampleLoader::prefetch_loop() {
  DataPosition at = position_;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || static_cast<int>(ready_.size()) < config_.prefetch; });
      if (stop_) return;
    }
    try {
      auto batch = read_at(at);
      at = batch.after;
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      stop_ = true;
    }
    cv_.notify_all();
  }
}

Batch SampleLoader::next() {
  Batch batch;
  if (config_.prefetch <= 0) {
    batch = read_at(position_);
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !ready_.empty() || error_; });
    if (ready_.empty()) std::rethrow_exception(error_);
    batch = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
  }
  position_ = batch.after;
  return batch;
}

const at::Tensor& sample_field(const Samples& samples, const std::string& name) {
  const auto it = samples.find(name);
  if (it != samples.end()) return it->second;
  std::string have;
  for (const auto& f : samples) have += (have.empty() ? "" : ", ") + f.first;
  throw std::invalid_argument("a batch without field '" + name + "' (it has: " + (have.empty() ? "none" : have) + ")");
}

}  // namespace reel
