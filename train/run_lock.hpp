// One owner per run directory: a running `reel train` holds an exclusive lock on
// RUN_DIR/reel.lock, so that a second run into the same directory is refused at once
// instead of mixing its checkpoints and metrics with the first one's.
//
// The lock is an open-file-description lock (fcntl F_OFD_SETLK) on the whole file: the
// kernel releases it when the process ends, however it ends (kill -9 included), so a
// crash never leaves a stale lock. (A node lost from an NFS mount holds it until the
// server drops its client: NFSv4's lease, about 90 s; NFSv3's lockd, until the node
// is back. The refusal names the holder's host, so that case is plain to see.) NFS (v3 through lockd, v4 natively) and
// Lustre mounted with -o flock carry such locks between nodes; a filesystem that cannot (Lustre without flock, some
// FUSE filesystems) fails the lock with ENOLCK, ENOSYS or EOPNOTSUPP, and RunDirLock says so instead of pretending to
// hold it.
//
// A holder of the same Slurm job id (the previous start of a requeued job, still being
// ended) is waited for, up to two minutes; any other holder is refused at once.
//
// The file also records the holder (host, pid, Slurm job, start time) for the refusal
// message; it is advisory text only: the lock, not the file's existence, is what counts,
// and the file is left in place when the run ends.
#pragma once

#include <string>

namespace reel {

class RunDirLock {
 public:
  RunDirLock() = default;
  // Creates dir if needed and takes the lock. Throws std::runtime_error naming the
  // directory and the holder (host, pid, job, since) when another process holds it, and
  // naming the filesystem's limitation when it cannot hold locks (run.lock false runs
  // without the guard).
  explicit RunDirLock(const std::string& dir);
  ~RunDirLock();  // releases the lock (closing the file releases it)
  RunDirLock(RunDirLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  RunDirLock& operator=(RunDirLock&& o) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

  bool held() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The text RunDirLock records about this process: "host H, pid P, Slurm job J, since T".
std::string lock_holder_description();

}  // namespace reel
