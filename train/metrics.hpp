// metrics.jsonl: one JSON object per line, written through nlohmann::json so that every
// line is valid JSON (a NaN or infinite value is written as null, never as bare nan).
//
// Every line is whole: a line goes to the file in one write(2) on an O_APPEND
// descriptor, and a write that fails part-way (a full disk, a file-size limit) is cut
// back off the file before the error is thrown, so the file ends after the last whole
// line. A process killed inside that write can still leave a fragment; the next run that
// opens the file (a resume) drops it and says so. Reopening rewrites the kept lines into
// a temporary file that replaces the old one by rename, so a crash then loses nothing.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace reel {

class MetricsWriter {
 public:
  // Opens path, keeping the lines of steps <= keep_through (a resumed run continues its
  // metrics without duplicated steps); -1 starts it empty. Lines that are not whole JSON
  // objects (a torn last line of a crash) are dropped and counted (dropped()). Throws
  // std::runtime_error naming the file on failure.
  explicit MetricsWriter(const std::string& path, int64_t keep_through = -1);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends one line, whole or not at all; throws std::runtime_error naming the file when
  // it could not be written (a full disk is an error, never silent).
  void write(const nlohmann::json& record);
  // Lines of the old file that were not valid JSON objects with a step, and were dropped.
  int64_t dropped() const { return dropped_; }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t dropped_ = 0;
};

}  // namespace reel
