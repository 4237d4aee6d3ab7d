#include "reel/checkpoint/export.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "reel/data/weights.hpp"

namespace reel {
namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

at::Tensor read_whole(CheckpointReader& reader, const std::string& kind, const std::string& param,
                      const std::vector<int64_t>& shape) {
  return reader.read(kind, param, 0, numel_of(shape)).view(shape);
}

}  // namespace

std::vector<TensorSummary> summarize(CheckpointReader& reader) {
  std::vector<TensorSummary> out;
  for (const auto& [param, shape] : reader.parameters()) {
    for (const char* kind : kShardKinds) {
      const auto t = read_whole(reader, kind, param, shape);
      out.push_back({kind, param, shape, t.min().item<double>(), t.max().item<double>(),
                     t.to(at::kDouble).mean().item<double>()});
    }
  }
  return out;
}

void export_weights(CheckpointReader& reader, const std::string& path) {
  WeightsWriter writer(path, reader.state().model);
  for (const auto& [param, shape] : reader.parameters())
    writer.write(param, read_whole(reader, "params", param, shape));
  writer.close();
}

void export_safetensors(CheckpointReader& reader, const std::string& path) {
  const auto params = reader.parameters();
  nlohmann::json header = nlohmann::json::object();
  int64_t offset = 0;
  for (const auto& [param, shape] : params) {
    const int64_t bytes = 4 * numel_of(shape);
    header[param] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  header["__metadata__"] = {{"format", "pt"},
                            {"producer", std::string("reel ") + reel_version()},
                            {"step", std::to_string(reader.manifest().state.step)}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  struct RemoveUnlessRenamed {  // a failed export leaves nothing behind
    const std::string& file;
    bool done = false;
    ~RemoveUnlessRenamed() {
      std::error_code ignored;
      if (!done) std::filesystem::remove(file, ignored);
    }
  } cleanup{tmp};
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  uint64_t size = text.size();
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(size >> (8 * i));
  out.write(reinterpret_cast<const char*>(le), 8);
  out << text;
  for (const auto& [param, shape] : params) {  // the same (sorted) order as the offsets
    const auto t = read_whole(reader, "params", param, shape).contiguous();
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(4 * t.numel()));
  }
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + tmp + " (disk full?)");
  out.close();
  std::filesystem::rename(tmp, path);
  cleanup.done = true;
}

}  // namespace reel
