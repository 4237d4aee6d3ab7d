#include "train/metrics.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace reel {

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_through) : path_(path) {
  std::string kept;
  if (keep_through >= 0) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= keep_through) {
        kept += line + "\n";
      }
    }
  }
  out_.open(path, std::ios::trunc);
  out_ << kept;
  out_.flush();
  if (!out_) throw std::runtime_error("cannot open metrics file " + path + " for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << "\n";
  errno = 0;
  out_.flush();
  if (!out_) {
    throw std::runtime_error("cannot write to metrics file " + path_ + ": " +
                             (errno ? std::strerror(errno) : "write failed (disk full?)"));
  }
}

}  // namespace reel
