// metrics.jsonl: one JSON object per line, written through nlohmann::json so that every
// line is valid JSON (a NaN or infinite value is written as null, never as bare nan).
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace reel {

class MetricsWriter {
 public:
  // Opens (truncates) path. Throws std::runtime_error naming the file on failure.
  explicit MetricsWriter(const std::string& path);
  // Appends one line and flushes it; throws std::runtime_error naming the file when the
  // line could not be written (a full disk is an error, never silent).
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace reel
