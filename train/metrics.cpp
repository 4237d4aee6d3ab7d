#include "train/metrics.hpp"

#include <stdexcept>

namespace reel {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::trunc) {
  if (!out_) throw std::runtime_error("cannot open metrics file " + path + " for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << "\n";
  out_.flush();
  if (!out_) throw std::runtime_error("cannot write to metrics file " + path_ + " (disk full?)");
}

}  // namespace reel
