// A file of samples the loader reads by index, whatever the model: reel's video files
// (data/video_file.hpp), a token corpus (lm/corpus.hpp), or a project's own format. The
// loader (data/loader.hpp) decides which samples each rank reads; a reader only reads.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace reel {

// Named fields of a batch of samples, each [b, ...] with one row per sample (a video
// file's "frames" uint8 [b, T, H, W, C] and "actions" float32 [b, T, A]; a corpus's
// "tokens" int64 [b, L + 1]).
using Samples = std::map<std::string, at::Tensor>;

class SampleReader {
 public:
  virtual ~SampleReader() = default;
  virtual int64_t sample_count() const = 0;
  // The samples at `indices`, in that order. Throws std::runtime_error naming the file
  // and the sample when one cannot be read.
  virtual Samples read_samples(const std::vector<int64_t>& indices) = 0;
};

// Opens the file at a path (throws std::runtime_error naming it when it cannot).
using ReaderFactory = std::function<std::unique_ptr<SampleReader>(const std::string& path)>;

// The field `name` of `samples`; throws std::invalid_argument naming the fields there are.
const at::Tensor& sample_field(const Samples& samples, const std::string& name);

}  // namespace reel
