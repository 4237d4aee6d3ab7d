#include "reel/train/run_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace reel {
namespace {

std::string read_holder(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text.empty() ? "a process that is starting (it has not written its name yet)" : text;
}

}  // namespace

std::string lock_holder_description() {
  char host[256] = "?";
  ::gethostname(host, sizeof(host) - 1);
  const char* job = std::getenv("SLURM_JOB_ID");
  const std::time_t now = std::time(nullptr);
  char when[32] = "?";
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::ostringstream out;
  out << "host " << host << ", pid " << ::getpid() << ", " << (job ? std::string("Slurm job ") + job : "no Slurm job")
      << ", since " << when;
  return out.str();
}

RunDirLock::RunDirLock(const std::string& dir) : path_(dir + "/reel.lock") {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create run.dir " + dir + ": " + ec.message());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open the run directory's lock file " + path_ + ": " + std::strerror(errno));
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
  // A requeued Slurm job can start while its previous start's processes are still being
  // ended (or, on NFS, while a lost node's lock waits out its lease): a holder of the same
  // job id is waited for, up to kSameJobWait; any other holder is refused at once.
  constexpr int kSameJobWait = 120;  // seconds
  const char* job = std::getenv("SLURM_JOB_ID");
  const std::string same_job = job ? std::string("Slurm job ") + job + "," : std::string();
  auto try_lock = [&] { return ::fcntl(fd_, F_OFD_SETLK, &lock) == 0 ? 0 : errno; };
  int err = try_lock();
  for (int waited = 0; (err == EAGAIN || err == EACCES) && !same_job.empty() && waited < kSameJobWait &&
                       read_holder(path_).find(same_job) != std::string::npos;
       ++waited) {
    ::sleep(1);
    err = try_lock();
  }
  if (err != 0) {
    ::close(fd_);
    fd_ = -1;
    if (err == EAGAIN || err == EACCES) {
      throw std::runtime_error("run.dir " + dir + " is in use by another reel train (" + read_holder(path_) +
                               "): one run directory holds one run at a time; wait for that run to end, stop it, "
                               "or choose another run.dir");
    }
    throw std::runtime_error("cannot lock run.dir " + dir + " (" + path_ + ": " + std::strerror(err) +
                             "): this filesystem does not hold file locks (on Lustre, mount with -o flock); "
                             "--run.lock false runs without the guard against a second run into the directory");
  }
  const std::string me = lock_holder_description() + "\n";
  // Advisory text for the refusal message: a failure to write it leaves the lock held.
  // Flushed so that another node (NFS) reads it, not an empty file.
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size())) {
    ::fsync(fd_);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

RunDirLock& RunDirLock::operator=(RunDirLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

}  // namespace reel
