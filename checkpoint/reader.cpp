#include "reel/checkpoint/reader.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <ATen/core/grad_mode.h>

#include "reel/data/hdf5.hpp"

namespace reel {
namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error("checkpoint " + where + ": " + what);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << at::IntArrayRef(shape);
  return s.str();
}

}  // namespace

CheckpointReader::CheckpointReader(const std::string& dir) : dir_(dir) {
  const std::string path = dir + "/manifest.json";
  if (!std::filesystem::is_directory(dir)) fail(dir, "no such checkpoint directory");
  std::ifstream in(path);
  if (!in) fail(path, "missing: the checkpoint is incomplete (a save that did not finish)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("not valid JSON (") + e.what() + ")");
  }
  manifest_ = manifest_from_json(j, path);
  for (size_t f = 0; f < manifest_.files.size(); ++f) {
    const auto& file = manifest_.files[f];
    const std::string p = dir + "/" + file.name;
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(p, ec);
    if (ec) fail(p, "missing (listed in the manifest)");
    if (static_cast<int64_t>(bytes) != file.bytes) {
      fail(p, std::to_string(bytes) + " bytes, the manifest says " + std::to_string(file.bytes) + " (truncated?)");
    }
    for (size_t d = 0; d < file.datasets.size(); ++d) {
      index_[{file.datasets[d].kind, file.datasets[d].param}].emplace_back(f, d);
    }
  }
  for (auto& [key, list] : index_) {
    std::sort(list.begin(), list.end(), [&](const auto& a, const auto& b) {
      return manifest_.files[a.first].datasets[a.second].begin < manifest_.files[b.first].datasets[b.second].begin;
    });
  }
}

TrainState CheckpointReader::state() const {
  // The state is in the manifest and in rank 0's file: they must agree (an edit to either
  // is caught here, as the checksums catch edits to the tensors).
  const std::string path = dir_ + "/" + manifest_.files.at(0).name;
  const TrainState file = read_rank_state(path), &m = manifest_.state;
  const bool same = file.step == m.step && file.optimizer_steps == m.optimizer_steps && file.data == m.data &&
                    file.seed == m.seed && file.data_seed == m.data_seed && file.config_ini == m.config_ini &&
                    file.dp == m.dp && file.sp == m.sp && file.shard_group == m.shard_group &&
                    file.data_clips == m.data_clips && file.data_sha256 == m.data_sha256;
  if (!same) fail(dir_ + "/manifest.json", "its training state differs from " + path + "'s /train (edited?)");
  return file;
}

std::map<std::string, std::vector<int64_t>> CheckpointReader::parameters() const {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& f : manifest_.files) {
    for (const auto& d : f.datasets) out[d.param] = d.shape;
  }
  return out;
}

at::Tensor CheckpointReader::read_dataset(size_t f, size_t d) {
  if (cached_key_ == std::make_pair(f, d)) return cached_;
  const auto& file = manifest_.files[f];
  const auto& rec = file.datasets[d];
  const std::string path = dir_ + "/" + file.name, where = path + " dataset /" + rec.path();
  auto values = at::empty({rec.end - rec.begin}, at::kFloat);
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    hdf5_quiet();
    H5Id h5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!h5.valid()) fail(path, "cannot open (truncated or damaged?)");
    const std::string name = "/" + rec.path();
    if (H5Lexists(h5.get(), rec.kind.c_str(), H5P_DEFAULT) <= 0 ||
        H5Lexists(h5.get(), name.c_str(), H5P_DEFAULT) <= 0) {
      fail(where, "missing");
    }
    H5Id ds(H5Dopen2(h5.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    const auto dims = ds.valid() ? dataset_dims(ds.get()) : std::vector<hsize_t>{};
    if (dims.size() != 1 || static_cast<int64_t>(dims[0]) != values.numel())
      fail(where, "has another size than the manifest's");
    if (H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data_ptr()) < 0) {
      fail(where, "cannot be read (damaged file?)");
    }
  }
  if (crc32_of(values.data_ptr(), values.numel() * sizeof(float)) != rec.crc32) {
    fail(where, "checksum mismatch: the data is corrupt");
  }
  cached_key_ = {f, d};
  cached_ = values;
  return values;
}

at::Tensor CheckpointReader::read(const std::string& kind, const std::string& param, int64_t begin, int64_t end) {
  auto it = index_.find({kind, param});
  if (it == index_.end()) fail(dir_, "holds no " + kind + " of parameter " + param);
  auto out = at::empty({end - begin}, at::kFloat);
  int64_t covered = 0;
  for (const auto& [f, d] : it->second) {
    const auto& rec = manifest_.files[f].datasets[d];
    const int64_t a = std::max(begin, rec.begin), b = std::min(end, rec.end);
    if (a >= b) continue;
    out.narrow(0, a - begin, b - a).copy_(read_dataset(f, d).narrow(0, a - rec.begin, b - a));
    covered += b - a;
  }
  if (covered != end - begin) {
    fail(dir_, kind + " of parameter " + param + ": the rank files hold " + std::to_string(covered) + " of the " +
                   std::to_string(end - begin) + " values asked for [" + std::to_string(begin) + ", " +
                   std::to_string(end) + ")");
  }
  return out;
}

std::vector<std::string> CheckpointReader::verify() {
  std::vector<std::string> problems;
  for (size_t f = 0; f < manifest_.files.size(); ++f) {
    for (size_t d = 0; d < manifest_.files[f].datasets.size(); ++d) {
      try {
        read_dataset(f, d);
      } catch (const std::runtime_error& e) {
        problems.push_back(e.what());
      }
    }
  }
  return problems;
}

void load_shards(CheckpointReader& reader, const std::vector<UnitShard>& units) {
  const auto params = reader.parameters();
  at::NoGradGuard no_grad;
  for (const auto& u : units) {
    const auto& l = *u.layout;
    const int64_t lo = l.begin(u.shard_rank), hi = lo + l.shard;
    at::Tensor targets[3] = {u.param, u.exp_avg, u.exp_avg_sq};
    for (const auto& slot : l.params) {
      auto it = params.find(slot.name);
      if (it == params.end()) fail(reader.dir(), "has no parameter " + slot.name + " (another architecture?)");
      if (it->second != slot.shape) {
        fail(reader.dir(),
             "parameter " + slot.name + " is " + shape_text(it->second) + ", the model's " + shape_text(slot.shape));
      }
      const int64_t a = std::max(lo, slot.offset), b = std::min(hi, slot.offset + slot.numel);
      if (a >= b) continue;
      for (int k = 0; k < 3; ++k) {
        targets[k]
            .narrow(0, a - lo, b - a)
            .copy_(reader.read(kShardKinds[k], slot.name, a - slot.offset, b - slot.offset));
      }
    }
  }
}

}  // namespace reel
