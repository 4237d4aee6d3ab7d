// TensorBoard event files from a run's metrics.jsonl, written by
// scripts/metrics_to_tensorboard.py with the project's Python (the tensorboard package
// from the venv scripts/setup.sh makes). The script is the one beside the executable
// (share/reel/scripts, launch/install_paths.hpp), the interpreter the build's venv Python,
// else python3; the environment's REEL_PYTHON and REEL_TENSORBOARD_SCRIPT override them.
//
// `reel tensorboard RUN_DIR` converts a run once (old runs, runs trained without the
// option), or follows it (--follow); `reel train --log.tensorboard` has rank 0 run the
// script as a child that tails metrics.jsonl while the run trains, so TensorBoard shows
// each step within seconds. The child is a separate process: converting never slows or
// fails a step, and a child that fails is a warning (reel tensorboard redoes it).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

#include "reel/dist/logging.hpp"

namespace reel {

// The script following run_dir/metrics.jsonl into run_dir/tensorboard, as a child process
// whose stdin is a pipe from this one: closing the pipe (finish(), the destructor, or this
// process dying in any way) tells it to write what is left and exit, so it never outlives
// the run by more than that.
class TensorBoardFollower {
 public:
  // Starts the child; throws std::runtime_error naming the reason when it cannot.
  explicit TensorBoardFollower(const std::string& run_dir);
  ~TensorBoardFollower();  // closes the pipe without waiting (an error is on its way out)
  TensorBoardFollower(const TensorBoardFollower&) = delete;
  TensorBoardFollower& operator=(const TensorBoardFollower&) = delete;

  // Closes the pipe and waits up to timeout_s for the child's last pass. Returns its exit
  // status (0: every step written), or -1 when it did not end in time (it goes on alone).
  int finish(double timeout_s);

 private:
  pid_t pid_ = -1;
  int pipe_ = -1;  // the write end; the child reads the other as its stdin
};

// Rank 0 of `reel train --log.tensorboard`: starts the follower after the first step
// (when fit() has cut metrics.jsonl back to a resumed checkpoint's step, so the child
// reads the run's final lines from the start) and ends it after the run.
class LiveTensorBoard {
 public:
  LiveTensorBoard(std::string run_dir, Logger log) : run_dir_(std::move(run_dir)), log_(std::move(log)) {}
  void after_step();  // the first call starts the child; a failure to start is a warning
  void finish();      // waits for the child's last pass and says where the events are

 private:
  std::string run_dir_;
  Logger log_;
  bool tried_ = false;
  std::unique_ptr<TensorBoardFollower> follower_;
};

// `reel tensorboard RUN_DIR [--out DIR] [--follow]`.
int run_tensorboard(int argc, char** argv);

}  // namespace reel
