// metrics.jsonl: one JSON object per line, written through nlohmann::json so that every
// line is valid JSON (a NaN or infinite value is written as null, never as bare nan).
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace reel {

class MetricsWriter {
 public:
  // Opens path, keeping the lines of steps <= keep_through (a resumed run continues its
  // metrics without duplicated steps); -1 starts it empty. Throws std::runtime_error
  // naming the file on failure.
  explicit MetricsWriter(const std::string& path, int64_t keep_through = -1);
  // Appends one line and flushes it; throws std::runtime_error naming the file when the
  // line could not be written (a full disk is an error, never silent).
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace reel
