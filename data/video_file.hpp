// reel's HDF5 video schema (docs/data.md), version 1:
//   /frames   uint8   [N, T, H, W, C]  chunked one clip per chunk, Fletcher-32 per chunk
//   /actions  float32 [N, T, A]        (A may be 0) likewise, when A > 0
// The element types are checked exactly (int8 or float64 frames are refused). The
// per-chunk Fletcher-32 checksum (HDF5's own filter, read by any HDF5 tool) makes damage
// to a clip an error naming the clip; files written before it (no filter) still load,
// and info().checksums says so.
//   attributes on /: schema_version (int), fps (double), provenance (string),
//                    content_sha256 (string; optional): the clips' content hash, below
// Any tool that reads HDF5 (h5py, h5dump) reads these files.
//
// HDF5 calls hold hdf5_mutex() (data/hdf5.hpp), shared with every other HDF5 user.
#pragma once

#include <filesystem>

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "reel/data/dataset.hpp"
#include "reel/data/hdf5.hpp"

namespace reel {

constexpr int kVideoSchemaVersion = 1;

struct VideoFileInfo {
  std::string path;
  int64_t clips = 0, frames = 0, height = 0, width = 0, channels = 0, action_dim = 0;
  double fps = 0;
  std::string provenance;
  bool checksums = false;      // every clip carries a Fletcher-32 checksum (false: an older file)
  std::string content_sha256;  // the stored content_sha256 attribute; "" when the file has none
};

// SHA-256 (FIPS 180-4), fed incrementally.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t bytes);
  std::string hex_digest();  // 64 lowercase hex digits; ends the hash (no update after it)

 private:
  void block(const unsigned char* p);  // one 64-byte block
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t used_ = 0;  // bytes in buf_
  uint64_t total_ = 0;
};

// The content hash of a video file (docs/data.md): SHA-256 over the clips in index order,
// each clip's /frames row (uint8, row-major) followed by its /actions row (float32
// little-endian, row-major; nothing when A = 0). The clip count is not part of it (a
// checkpoint stores it beside the hash). Writers store it as the content_sha256 attribute.
constexpr const char* kContentHashAttribute = "content_sha256";

struct Clips {
  at::Tensor frames;   // uint8 [B, T, H, W, C]
  at::Tensor actions;  // float32 [B, T, A]
};

// Reads clips from a file in the schema. Opening checks the schema and throws
// std::runtime_error naming the file (and the clip, for reads) on: a missing dataset, a
// wrong rank or dtype, a truncated or unreadable file, disagreeing clip counts.
class VideoReader : public SampleReader {
 public:
  explicit VideoReader(const std::string& path);
  ~VideoReader() override;
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoFileInfo& info() const { return info_; }
  // Throws std::runtime_error naming the file and the clip when a clip cannot be read or
  // fails its checksum, holds non-finite actions, or the file changed since it was opened (its size or
  // modification time: rewritten or truncated under a running job).
  Clips read(const std::vector<int64_t>& indices);
  // SampleReader: the clips as fields "frames" and "actions".
  int64_t sample_count() const override { return info_.clips; }
  Samples read_samples(const std::vector<int64_t>& indices) override;
  // Reads every clip and returns their content hash (the stored attribute is not used).
  // Throws like read(). Takes the HDF5 lock clip by clip.
  std::string compute_content_sha256();

 private:
  void check_unchanged(int64_t clip) const;

  VideoFileInfo info_;
  H5Id file_, frames_, actions_;
  std::uintmax_t size_ = 0;  // the file as opened
  std::filesystem::file_time_type mtime_{};
};

// Writes a file in the schema clip by clip (frames uint8 [T, H, W, C], actions [T, A]).
// close() stores the content hash when the clips were written in index order, 0 to N-1
// (otherwise the file has none and reel computes it when it trains on the file).
class VideoWriter {
 public:
  VideoWriter(const std::string& path, int64_t clips, int64_t frames, int64_t height, int64_t width, int64_t channels,
              int64_t action_dim, double fps, const std::string& provenance);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;
  void write(int64_t index, const at::Tensor& frames, const at::Tensor& actions);
  // Writes the content hash attribute (when every clip was written in order) and closes
  // the file. Throws std::runtime_error naming the file when it cannot.
  void close();

 private:
  std::string path_;
  H5Id file_, frames_, actions_;
  int64_t clips_ = 0, next_ = 0;  // next_: the clip the hash expects next (-1: out of order)
  Sha256 hash_;
};

}  // namespace reel
