// Asynchronous, atomic checkpoints.
//
// save() blocks the training thread only to take the snapshot (host copies of this
// rank's shards and moments); a background thread writes the rank file into
// ROOT/.tmp_step_N/ while training goes on (its HDF5 calls hold hdf5_mutex(), shared
// with the data loader). At most one save is in flight: a new save first finishes the
// previous one. Finishing is collective and runs on the training thread, at the same
// step on every rank (poll() after every step, wait() at the end): the ranks agree that
// every writer succeeded; then rank 0 writes manifest.json last, renames the directory to
// ROOT/step_N, points ROOT/latest at it and removes all but the newest `keep` complete
// checkpoints. A writer that failed on any rank is reported on every rank, no manifest
// is written, the partial directory is removed, and training goes on with its state.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <utility>

#include "reel/checkpoint/rank_file.hpp"
#include "reel/dist/communicator.hpp"
#include "reel/dist/logging.hpp"

namespace reel {

class AsyncSaver {
 public:
  // root: the checkpoints directory (created when needed). comm: every rank of the job.
  AsyncSaver(std::string root, int keep, Communicator& comm, const Logger& log);
  ~AsyncSaver();  // joins a writer still running (no communication)

  // Collective. Finishes a save in flight, then starts writing `snapshot`, whose taking
  // took snapshot_seconds (the caller's blocking part).
  void save(RankSnapshot snapshot, double snapshot_seconds = 0);
  // Collective; call after every step on every rank. Finishes the save in flight if
  // every rank's writer is done (one 16-byte all-reduce while a save is in flight).
  void poll();
  // Collective: waits for the save in flight and finishes it.
  void wait();
  bool in_flight() const { return writer_.valid(); }
  // The step of the newest checkpoint this saver completed (-1: none), and how many
  // saves failed.
  int64_t last_complete() const { return last_complete_; }
  int failures() const { return failures_; }
  // This rank's figures of the last finished save: blocking snapshot seconds, writer
  // seconds and the bytes of its rank file.
  double snapshot_seconds() const { return snapshot_s_; }
  double write_seconds() const { return write_s_; }
  int64_t bytes_written() const { return bytes_; }
  // True once after each save finished (complete or failed), wherever it finished.
  bool take_finished() { return std::exchange(finished_, false); }

 private:
  struct WriteResult {
    std::string error;  // empty: written
    double seconds = 0;
    int64_t bytes = 0;
  };
  void finish(bool all_done);
  void commit(const std::string& tmp, int64_t step);  // rank 0
  void retain(int64_t committed);                     // rank 0
  int agree(bool failed_here);                        // collective: the lowest rank that failed, or -1

  std::string root_;
  int keep_;
  Communicator& comm_;
  const Logger& log_;
  std::future<WriteResult> writer_;
  int64_t step_ = -1;  // of the save in flight
  int64_t last_complete_ = -1;
  int failures_ = 0;
  double snapshot_s_ = 0, write_s_ = 0;
  int64_t bytes_ = 0;
  bool finished_ = false;
};

// ROOT/.tmp_step_N: where step N is written until it is complete.
std::string checkpoint_tmp_dir(const std::string& root, int64_t step);

}  // namespace reel
