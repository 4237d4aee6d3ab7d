#include "reel/checkpoint/rank_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <stdexcept>

#include "reel/data/hdf5.hpp"
#include "reel/data/weights.hpp"

namespace reel {

const char* const kShardKinds[3] = {"params", "exp_avg", "exp_avg_sq"};

RankSnapshot take_snapshot(const std::vector<UnitShard>& units, const TrainState& state, int rank, int world_size,
                           bool holds_tensors) {
  RankSnapshot s{rank, world_size, state, {}};
  if (!holds_tensors) return s;
  for (const auto& u : units) {
    const auto& l = *u.layout;
    const int64_t lo = l.begin(u.shard_rank), hi = lo + l.shard;
    const at::Tensor* sources[3] = {&u.param, &u.exp_avg, &u.exp_avg_sq};
    for (const auto& slot : l.params) {
      const int64_t a = std::max(lo, slot.offset), b = std::min(hi, slot.offset + slot.numel);
      if (a >= b) continue;
      ShardPiece p{slot.name, slot.shape, a - slot.offset, b - slot.offset, {}};
      // A copy, not a view: the optimizer updates the shards right after this returns.
      for (int k = 0; k < 3; ++k)
        p.values[k] = sources[k]->narrow(0, a - lo, b - a).to(at::kCPU, at::kFloat, false, true);
      s.pieces.push_back(std::move(p));
    }
  }
  return s;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("checkpoint file " + path + ": " + what);
}

void write_state(hid_t file, const RankSnapshot& s, const std::string& path) {
  const auto& t = s.state;
  bool ok = write_attribute(file, "format", std::string("reel-checkpoint")) &&
            write_attribute(file, "format_version", int64_t{kCheckpointFormatVersion}) &&
            write_attribute(file, "reel_version", std::string(reel_version())) &&
            write_attribute(file, "step", t.step) && write_attribute(file, "rank", int64_t{s.rank}) &&
            write_attribute(file, "world_size", int64_t{s.world_size});
  H5Id train(H5Gcreate2(file, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  ok = ok && train.valid() && write_attribute(train.get(), "step", t.step) &&
       write_attribute(train.get(), "optimizer_steps", t.optimizer_steps) &&
       write_attribute(train.get(), "data_epoch", t.data.epoch) &&
       write_attribute(train.get(), "data_cursor", t.data.cursor) &&
       write_attribute(train.get(), "seed", static_cast<int64_t>(t.seed)) &&
       write_attribute(train.get(), "data_seed", static_cast<int64_t>(t.data_seed)) &&
       write_attribute(train.get(), "config_ini", t.config_ini) &&
       write_attribute(train.get(), "mesh_dp", int64_t{t.dp}) &&
       write_attribute(train.get(), "mesh_sp", int64_t{t.sp}) &&
       write_attribute(train.get(), "mesh_shard_group", int64_t{t.shard_group}) &&
       write_attribute(train.get(), "data_clips", t.data_clips) &&
       write_attribute(train.get(), "data_sha256", t.data_sha256);
  H5Id model(H5Gcreate2(file, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  ok = ok && model.valid() && write_model_config(model.get(), t.model);
  if (!ok) fail(path, "cannot write the training state (disk full?)");
}

// One dataset; the caller holds hdf5_mutex() (and computed the checksum without it).
void write_piece(hid_t group, const char* kind, const ShardPiece& p, const at::Tensor& values,
                 const std::string& path) {
  const hsize_t n = static_cast<hsize_t>(p.end - p.begin);
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Id ds(H5Dcreate2(group, p.param.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
          H5Dclose);
  const bool ok = ds.valid() &&
                  H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data_ptr()) >= 0 &&
                  write_attribute(ds.get(), "shape", p.shape) && write_attribute(ds.get(), "begin", p.begin) &&
                  write_attribute(ds.get(), "end", p.end) && write_attribute(ds.get(), "dtype", std::string("float32"));
  if (!ok) fail(path, std::string("cannot write ") + kind + "/" + p.param + " (disk full?)");
}

void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) fail(path, "cannot flush to disk");
}

}  // namespace

// The HDF5 lock is taken per dataset, not for the whole file: the data loader's reads
// (and evaluation's) wait at most for one dataset's write, never for the whole save.
FileRecord write_rank_file(const std::string& dir, const RankSnapshot& s) {
  FileRecord record{"rank" + std::to_string(s.rank) + ".h5", 0, {}};
  const std::string path = dir + "/" + record.name;
  H5Id file, groups[3];
  auto locked = [](const std::function<void()>& f) {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    f();
  };
  try {
    locked([&] {
      hdf5_quiet();
      file = H5Id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      if (!file.valid()) fail(path, "cannot create");
      write_state(file.get(), s, path);
      for (int k = 0; k < 3; ++k) {
        groups[k] = H5Id(H5Gcreate2(file.get(), kShardKinds[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        if (!groups[k].valid()) fail(path, std::string("cannot create group ") + kShardKinds[k]);
      }
    });
    for (int k = 0; k < 3; ++k) {
      for (const auto& p : s.pieces) {
        const auto& v = p.values[k];
        record.datasets.push_back(
            {kShardKinds[k], p.param, p.shape, p.begin, p.end, crc32_of(v.data_ptr(), v.numel() * sizeof(float))});
        locked([&] { write_piece(groups[k].get(), kShardKinds[k], p, v, path); });
      }
    }
    locked([&] {
      for (auto& g : groups) g.reset();
      if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) fail(path, "cannot flush (disk full?)");
      file.reset();
    });
  } catch (...) {
    locked([&] {  // handles are closed under the lock, whatever failed
      for (auto& g : groups) g.reset();
      file.reset();
    });
    throw;
  }
  sync_to_disk(path);
  record.bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  return record;
}

TrainState read_rank_state(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file (missing, truncated or damaged)");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) fail(path, "cannot open (truncated or damaged?)");
  TrainState t;
  int64_t seed = 0, data_seed = 0, dp = 1, sp = 1, shard_group = 1;
  H5Id train(H5Gopen2(file.get(), "train", H5P_DEFAULT), H5Gclose);
  const bool ok = train.valid() && read_attribute(train.get(), "step", t.step) &&
                  read_attribute(train.get(), "optimizer_steps", t.optimizer_steps) &&
                  read_attribute(train.get(), "data_epoch", t.data.epoch) &&
                  read_attribute(train.get(), "data_cursor", t.data.cursor) &&
                  read_attribute(train.get(), "seed", seed) && read_attribute(train.get(), "data_seed", data_seed) &&
                  read_attribute(train.get(), "config_ini", t.config_ini) &&
                  read_attribute(train.get(), "mesh_dp", dp) && read_attribute(train.get(), "mesh_sp", sp) &&
                  read_attribute(train.get(), "mesh_shard_group", shard_group);
  if (!ok) fail(path, "incomplete training state in /train");
  // Optional: absent in checkpoints saved before reel recorded the data file's identity.
  if (!read_attribute(train.get(), "data_clips", t.data_clips)) t.data_clips = -1;
  if (!read_attribute(train.get(), "data_sha256", t.data_sha256)) t.data_sha256.clear();
  t.dp = static_cast<int>(dp);
  t.sp = static_cast<int>(sp);
  t.shard_group = static_cast<int>(shard_group);
  t.seed = static_cast<uint64_t>(seed);
  t.data_seed = static_cast<uint64_t>(data_seed);
  H5Id model(H5Gopen2(file.get(), "model", H5P_DEFAULT), H5Gclose);
  if (!model.valid()) fail(path, "no /model group");
  t.model = read_model_config(model.get(), path);
  return t;
}

}  // namespace reel
