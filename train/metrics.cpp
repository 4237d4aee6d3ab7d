#include "reel/train/metrics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "reel/checkpoint/format.hpp"

namespace reel {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::runtime_error(what + " " + path + ": " + (err ? std::strerror(err) : "write failed (disk full?)"));
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_through) : path_(path) {
  std::string kept;
  if (keep_through >= 0) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      const bool whole = j.is_object() && j.contains("step") && j["step"].is_number_integer();
      if (!whole) ++dropped_;
      if (whole && j["step"].get<int64_t>() <= keep_through) kept += line + "\n";
    }
  }
  // Replaced whole (rename), never truncated in place: a crash here keeps the old lines.
  write_file_atomically(path, kept);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open metrics file", path, errno);
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail("cannot write to metrics file", path_, errno);
  const off_t before = st.st_size;  // the file ends after a whole line here
  size_t done = 0;
  int err = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (done == line.size()) return;
  // Part of the line may be in the file: cut it off, so every line stays whole.
  if (done > 0 && ::ftruncate(fd_, before) != 0) {
    throw std::runtime_error("cannot write to metrics file " + path_ + ": " + std::strerror(err) +
                             ", and its torn last line could not be removed (" + std::strerror(errno) +
                             "); the next resume drops it");
  }
  fail("cannot write to metrics file", path_, err);
}

}  // namespace reel
