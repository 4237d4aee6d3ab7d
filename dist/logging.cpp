// Compiled without LibTorch's include directory (see logging.hpp).
#include "reel/dist/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace reel {

struct Logger::Failure {
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string message;  // the first failure's
};
namespace {

static_assert(int(LogLevel::kTrace) == spdlog::level::trace && int(LogLevel::kOff) == spdlog::level::off,
              "LogLevel follows spdlog's order");
spdlog::level::level_enum spdlog_level(LogLevel level) { return static_cast<spdlog::level::level_enum>(level); }

}  // namespace

Logger::Logger(const LogConfig& config, int rank) {
  const auto level = spdlog_level(config.level);
  std::vector<spdlog::sink_ptr> sinks;
  // Every rank prints its errors; only rank 0 (or every rank, with all_ranks) the rest.
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  if (rank != 0 && !config.all_ranks) console->set_level(spdlog::level::err);
  sinks.push_back(console);
  if (!config.dir.empty()) {
    std::filesystem::create_directories(config.dir);
    const std::string path = config.dir + "/rank" + std::to_string(rank) + ".log";
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
  }
  impl_ = std::make_shared<spdlog::logger>("reel", sinks.begin(), sinks.end());
  impl_->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%^%l%$] %v");
  impl_->set_level(level);
  impl_->flush_on(spdlog::level::warn);
  failure_ = std::make_shared<Failure>();
  impl_->set_error_handler([failure = failure_](const std::string& message) {
    std::lock_guard<std::mutex> lock(failure->mutex);
    if (failure->failed.exchange(true)) return;
    failure->message = message;
  });
}

void Logger::debug(const std::string& line) const { impl_->debug(line); }
void Logger::info(const std::string& line) const { impl_->info(line); }
void Logger::warn(const std::string& line) const { impl_->warn(line); }
void Logger::error(const std::string& line) const { impl_->error(line); }
void Logger::flush() const { impl_->flush(); }

void Logger::check() const {
  if (!failure_->failed.load()) return;
  std::lock_guard<std::mutex> lock(failure_->mutex);
  throw std::runtime_error("cannot write the log: " + failure_->message);
}

}  // namespace reel
