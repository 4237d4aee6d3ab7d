// Reading a checkpoint back, at any layout: each range a rank needs is assembled from
// whichever rank files hold it, so a checkpoint saved at N ranks loads at any other
// count or dp x shard-group layout. Everything read is checked first: the manifest, each
// file's size, each dataset's shape and CRC-32; a problem throws std::runtime_error
// naming the file and the dataset, before any value is used.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "reel/checkpoint/rank_file.hpp"

namespace reel {

class CheckpointReader {
 public:
  // Reads manifest.json and checks that every rank file is there with its size.
  explicit CheckpointReader(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  // The training state, with the model configuration from rank 0's file.
  TrainState state() const;
  // Every parameter in the checkpoint and its shape.
  std::map<std::string, std::vector<int64_t>> parameters() const;
  // [end - begin] fp32: the flat values [begin, end) of one parameter's `kind`
  // ("params", "exp_avg" or "exp_avg_sq"), assembled from the rank files and verified.
  at::Tensor read(const std::string& kind, const std::string& param, int64_t begin, int64_t end);
  // Reads every dataset and checks its checksum; returns one line per problem.
  std::vector<std::string> verify();

 private:
  at::Tensor read_dataset(size_t file, size_t dataset);  // whole and verified

  std::string dir_;
  Manifest manifest_;
  // (kind, param) -> (file index, dataset index), ordered by begin.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<size_t, size_t>>> index_;
  std::pair<size_t, size_t> cached_key_{SIZE_MAX, SIZE_MAX};
  at::Tensor cached_;
};

// Fills each unit's shard and AdamW moments for this rank's range from the checkpoint
// (padding stays zero). Throws when a parameter is missing or has another shape.
void load_shards(CheckpointReader& reader, const std::vector<UnitShard>& units);

}  // namespace reel
