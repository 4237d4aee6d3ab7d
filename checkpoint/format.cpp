#include "reel/checkpoint/format.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace reel {

const char* reel_version() { return REEL_VERSION; }

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

int64_t checkpoint_step(const std::string& name) {
  // "step_" and at least 8 digits (more once steps pass 10^8).
  if (name.size() < 13 || name.size() > 23 || name.compare(0, 5, "step_") != 0) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

uint32_t crc32_of(const void* data, size_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {  // zlib takes 32-bit lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(bytes, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    bytes -= n;
  }
  return static_cast<uint32_t>(crc);
}

nlohmann::json to_json(const FileRecord& f) {
  nlohmann::json datasets = nlohmann::json::array();
  for (const auto& d : f.datasets) {
    datasets.push_back({{"kind", d.kind},
                        {"param", d.param},
                        {"shape", d.shape},
                        {"begin", d.begin},
                        {"end", d.end},
                        {"crc32", d.crc32}});
  }
  return {{"name", f.name}, {"bytes", f.bytes}, {"datasets", datasets}};
}

FileRecord file_from_json(const nlohmann::json& j) {
  FileRecord f{j.at("name").get<std::string>(), j.at("bytes").get<int64_t>(), {}};
  for (const auto& d : j.at("datasets")) {
    f.datasets.push_back({d.at("kind").get<std::string>(), d.at("param").get<std::string>(),
                          d.at("shape").get<std::vector<int64_t>>(), d.at("begin").get<int64_t>(),
                          d.at("end").get<int64_t>(), d.at("crc32").get<uint32_t>()});
  }
  return f;
}

nlohmann::json to_json(const Manifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files) files.push_back(to_json(f));
  const auto& s = m.state;
  return {{"format", "reel-checkpoint"},
          {"format_version", m.format_version},
          {"reel_version", m.reel_version},
          {"world_size", m.world_size},
          {"train",
           {{"step", s.step},
            {"optimizer_steps", s.optimizer_steps},
            {"data_epoch", s.data.epoch},
            {"data_cursor", s.data.cursor},
            {"seed", s.seed},
            {"data_seed", s.data_seed},
            {"data_clips", s.data_clips},
            {"data_sha256", s.data_sha256}}},
          {"mesh", {{"dp", s.dp}, {"sp", s.sp}, {"shard_group", s.shard_group}}},
          {"config_ini", s.config_ini},
          {"files", files}};
}

Manifest manifest_from_json(const nlohmann::json& j, const std::string& path) {
  try {
    if (j.at("format").get<std::string>() != "reel-checkpoint")
      throw std::runtime_error("format is not reel-checkpoint");
    Manifest m;
    m.format_version = j.at("format_version").get<int>();
    if (m.format_version != kCheckpointFormatVersion) {
      throw std::runtime_error("format_version " + std::to_string(m.format_version) + ", this reel reads " +
                               std::to_string(kCheckpointFormatVersion));
    }
    m.reel_version = j.at("reel_version").get<std::string>();
    m.world_size = j.at("world_size").get<int>();
    const auto& t = j.at("train");
    m.state.step = t.at("step").get<int64_t>();
    m.state.optimizer_steps = t.at("optimizer_steps").get<int64_t>();
    m.state.data = {t.at("data_epoch").get<int64_t>(), t.at("data_cursor").get<int64_t>()};
    m.state.seed = t.at("seed").get<uint64_t>();
    m.state.data_seed = t.at("data_seed").get<uint64_t>();
    // Absent in checkpoints saved before reel recorded the data file's identity.
    m.state.data_clips = t.value("data_clips", int64_t{-1});
    m.state.data_sha256 = t.value("data_sha256", std::string());
    m.state.config_ini = j.at("config_ini").get<std::string>();
    const auto& mesh = j.at("mesh");
    m.state.dp = mesh.at("dp").get<int>();
    m.state.sp = mesh.at("sp").get<int>();
    m.state.shard_group = mesh.at("shard_group").get<int>();
    for (const auto& f : j.at("files")) m.files.push_back(file_from_json(f));
    if (static_cast<int>(m.files.size()) != m.world_size) {
      throw std::runtime_error("lists " + std::to_string(m.files.size()) + " rank files for a world of " +
                               std::to_string(m.world_size));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("checkpoint manifest " + path + ": malformed (" + e.what() + ")");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("checkpoint manifest " + path + ": " + e.what());
  }
}

namespace {
bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  const bool ok = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}
}  // namespace

void sync_directory(const std::string& dir) {
  if (!fsync_path(dir, O_RDONLY | O_DIRECTORY)) throw std::runtime_error("cannot flush directory " + dir + " to disk");
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp + " (disk full?)");
  }
  if (!fsync_path(tmp, O_RDONLY)) throw std::runtime_error("cannot flush " + tmp + " to disk");
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  const auto parent = std::filesystem::path(path).parent_path();
  sync_directory(parent.empty() ? "." : parent.string());
}

}  // namespace reel
