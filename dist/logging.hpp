// Logging: every line carries the rank.
//
// By default only rank 0 prints (to stderr), except errors, which every rank prints;
// `all_ranks` makes every rank print everything, and
// `dir` additionally writes every rank's log to dir/rank<R>.log. The launcher builds one
// Logger from its configuration and passes it to whatever logs.
//
// Built on spdlog, but spdlog stays out of this header: Debian's spdlog uses the system
// fmt 9, while LibTorch's include directory carries its own fmt 12 that would shadow it
// in any file that also includes LibTorch. logging.cpp is compiled without LibTorch.
#pragma once

#include <iomanip>
#include <memory>
#include <sstream>
#include <string>

#include "reel/dist/enum_names.hpp"

namespace spdlog {
class logger;
}

namespace reel {

// The lowest level printed, in spdlog's order (logging.cpp converts by position).
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
constexpr EnumNames<LogLevel, 7> enum_names(LogLevel) {
  return {{{LogLevel::kTrace, "trace"},
           {LogLevel::kDebug, "debug"},
           {LogLevel::kInfo, "info"},
           {LogLevel::kWarn, "warn"},
           {LogLevel::kError, "error"},
           {LogLevel::kCritical, "critical"},
           {LogLevel::kOff, "off"}}};
}

struct LogConfig {
  LogLevel level = LogLevel::kInfo;
  bool all_ranks = false;  // every rank prints to stderr, not just rank 0
  std::string dir;         // non-empty: every rank also logs to dir/rank<R>.log
  std::string trace;       // train: the steps to trace, "A-B" or "A" (dist/trace.hpp); empty: off
};

class Logger {
 public:
  // Lines look like "[2026-11-25 13:31:52.123] [rank 3] [info] message".
  Logger(const LogConfig& config, int rank);
  void debug(const std::string& line) const;
  void info(const std::string& line) const;
  void warn(const std::string& line) const;
  void error(const std::string& line) const;
  void flush() const;
  // Throws std::runtime_error with the first failure to write a line or flush the log file
  // (a full disk, a file-size limit, a vanished directory). spdlog itself only reports such
  // failures on stderr and goes on; the Trainer checks after every step so that a run whose
  // log cannot be written ends with an error instead of reporting success.
  void check() const;

 private:
  struct Failure;  // the first write error, shared by the copies of this Logger
  std::shared_ptr<spdlog::logger> impl_;
  std::shared_ptr<Failure> failure_;
};

// Concatenates anything printable with <<: cat("loss ", 0.5, " at step ", 3).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

// x with `digits` digits after the point.
inline std::string fixed(double x, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

// s padded with spaces to `width` (right-aligned when width < 0).
inline std::string pad(const std::string& s, int width) {
  const size_t w = static_cast<size_t>(width < 0 ? -width : width);
  if (s.size() >= w) return s;
  return width < 0 ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace reel
