// reel's state checkpoints on disk (docs/checkpoint.md).
//
//   RUN_DIR/checkpoints/step_00000100/     one directory per checkpoint
//     rank<R>.h5       each rank's shards: /params/<name>, /exp_avg/<name>,
//                      /exp_avg_sq/<name> hold this rank's slice [begin, end) of the
//                      flattened parameter (attributes: shape, begin, end, numel); root
//                      attributes: format, format_version, reel_version, step, rank,
//                      world_size; /train: the training state; /model: the model
//                      configuration; /config: the whole training configuration (INI)
//     manifest.json    written last, by rank 0, once every rank has confirmed: every
//                      file with its size, every dataset with its range and CRC-32
//                      (zlib's CRC-32 of the dataset's float32 little-endian bytes)
//   RUN_DIR/checkpoints/latest                the newest complete checkpoint's name
//   RUN_DIR/checkpoints/.tmp_step_00000100/   a checkpoint being written (or a partial
//                                             one a crash left: ignored and reported)
//
// A checkpoint is complete when its directory has its final name and a manifest that
// parses; every load verifies sizes and checksums before using a byte. Nothing in a
// checkpoint is executed on load.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "reel/data/loader.hpp"
#include "reel/model/config.hpp"

namespace reel {

constexpr int kCheckpointFormatVersion = 1;
const char* reel_version();

// The training state besides the tensors: identical on every rank, independent of the
// number of ranks.
struct TrainState {
  int64_t step = 0;                  // completed optimizer steps
  int64_t optimizer_steps = 0;       // AdamW's step count (bias correction)
  DataPosition data;                 // the loader's global position
  uint64_t seed = 0, data_seed = 0;  // all randomness derives from these and the step
  std::string config_ini;            // the full training configuration
  ModelConfig model;
  // The layout that saved it (loading reshards to any other).
  int dp = 1, sp = 1, shard_group = 1;  // shard_group: ranks sharing one copy of the parameters
  // The data file's identity (docs/data.md, content hash): its clip count and the SHA-256
  // of its clips; -1 and "" in checkpoints saved before reel recorded them.
  int64_t data_clips = -1;
  std::string data_sha256;
};

// One dataset of a rank file: a slice of one parameter's flat values.
struct DatasetRecord {
  std::string kind;            // params | exp_avg | exp_avg_sq
  std::string param;           // the model's parameter name
  std::vector<int64_t> shape;  // the parameter's logical shape
  int64_t begin = 0, end = 0;  // the flat range held
  uint32_t crc32 = 0;
  std::string path() const { return kind + "/" + param; }
};

struct FileRecord {
  std::string name;  // rank<R>.h5
  int64_t bytes = 0;
  std::vector<DatasetRecord> datasets;
};

struct Manifest {
  int format_version = kCheckpointFormatVersion;
  std::string reel_version;
  int world_size = 1;
  TrainState state;
  std::vector<FileRecord> files;
};

std::string checkpoint_name(int64_t step);  // "step_00000100"
// -1 unless name is a checkpoint_name().
int64_t checkpoint_step(const std::string& name);
uint32_t crc32_of(const void* data, size_t bytes);

nlohmann::json to_json(const FileRecord& file);
FileRecord file_from_json(const nlohmann::json& j);
nlohmann::json to_json(const Manifest& m);
// Throws std::runtime_error naming `path` on anything missing or of the wrong type.
Manifest manifest_from_json(const nlohmann::json& j, const std::string& path);

// Writes text to path through a temporary file, flushed to disk, and a rename (readers see
// the old or the new content, never half; after a crash, one of them). Throws
// std::runtime_error naming the file.
void write_file_atomically(const std::string& path, const std::string& text);
// Flushes a directory's entries (a rename into it) to disk.
void sync_directory(const std::string& dir);

}  // namespace reel
