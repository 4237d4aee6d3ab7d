// The sample loader: seeded shuffling per epoch over one global sample order; each
// data-parallel group reads a disjoint share of every global batch; a background thread
// prefetches; the position (epoch, cursor in the global order) can be saved and restored
// whatever the number of ranks. "Which share is mine" is plain numbers, not a mesh.
#pragma once

#include <ATen/ATen.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "reel/data/dataset.hpp"

namespace reel {

// Where a run is in its data: independent of ranks.
struct DataPosition {
  int64_t epoch = 0;
  int64_t cursor = 0;  // samples of this epoch's global order already consumed
  bool operator==(const DataPosition& o) const { return epoch == o.epoch && cursor == o.cursor; }
};

struct LoaderConfig {
  std::string path;
  int64_t global_batch = 8;
  int64_t share = 0, shares = 1;  // this data-parallel group's index and the group count
  int64_t first = 0, count = -1;  // the clips used: [first, first + count); -1: to the end
  uint64_t seed = 0;
  bool shuffle = true;
  int prefetch = 2;  // batches read ahead by the background thread (0: none)
  // Clips per optimizer step (a multiple of global_batch, which is one micro-batch's; 0:
  // global_batch). A step's micro-batches come from one epoch: an epoch ends where the
  // next whole step would not fit, so the order of the clips does not depend on how a
  // step is split into micro-batches (a run resumed at another world size, where
  // data.micro_batch gives another count, sees the same clips).
  int64_t step_clips = 0;
  ReaderFactory open;  // how path is read (null: a video file, data/video_file.hpp)
};

struct Batch {
  Samples fields;                   // [b, ...] each, b = global_batch / shares (data/dataset.hpp)
  std::vector<int64_t> sample_ids;  // file index of each sample (the global sample index)
  DataPosition after;               // the position once this batch is consumed
  const at::Tensor& at(const std::string& name) const { return sample_field(fields, name); }
};

class SampleLoader {
 public:
  // Throws std::invalid_argument on a bad split (batch not divisible by shares, share out
  // of range, batch larger than the clips) and the reader's errors on a bad file.
  explicit SampleLoader(LoaderConfig config, DataPosition start = {});
  ~SampleLoader();

  Batch next();
  // Position after the last batch next() returned.
  DataPosition position() const { return position_; }
  // The global order of epoch e: clip indices, length count (exposed for tests).
  std::vector<int64_t> order(int64_t epoch) const;

 private:
  Batch read_at(DataPosition at);
  DataPosition advance(DataPosition at) const;
  void prefetch_loop();
  void stop_prefetch();

  LoaderConfig config_;
  std::unique_ptr<SampleReader> reader_;
  DataPosition position_;
  // Prefetch: the thread reads batches at successive positions into ready_.
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace reel
