#include "reel/launch/tensorboard.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/program_options.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "reel/launch/install_paths.hpp"
#include "reel/launch/options.hpp"

extern char** environ;

namespace po = boost::program_options;

namespace reel {
namespace {

// python script RUN_DIR extra...: no shell between, so no word needs quoting.
std::vector<std::string> script_command(const std::string& run_dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {python_for_scripts(),
                                   reel_file("REEL_TENSORBOARD_SCRIPT", "scripts/metrics_to_tensorboard.py"), run_dir};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Starts args with stdin from stdin_fd (-1: this process's), every signal unblocked and
// SIGINT/SIGTERM at their default action (this process may be ignoring them).
pid_t spawn(const std::vector<std::string>& args, int stdin_fd) {
  posix_spawn_file_actions_t files;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&files);
  posix_spawnattr_init(&attr);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&files, stdin_fd, 0);
    posix_spawn_file_actions_addclose(&files, stdin_fd);
  }
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int err = ::posix_spawnp(&pid, argv[0], &files, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    throw std::runtime_error("cannot start " + args[0] + " " + args[1] + ": " + std::strerror(err) +
                             " (scripts/setup.sh makes the venv; REEL_PYTHON names another interpreter)");
  }
  return pid;
}

int exit_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

TensorBoardFollower::TensorBoardFollower(const std::string& run_dir) {
  int fds[2];
  // Close-on-exec on both ends here: the child gets the read end as its stdin (dup2 clears
  // the flag there) and nothing else, so later children (reel plot's) never hold the pipe
  // open and the child sees its end exactly when this process closes the write end.
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
  try {
    pid_ = spawn(script_command(run_dir, {"--follow", "--until-stdin-closes"}), fds[0]);
  } catch (...) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw;
  }
  ::close(fds[0]);
  pipe_ = fds[1];
}

TensorBoardFollower::~TensorBoardFollower() {
  if (pipe_ >= 0) ::close(pipe_);  // the child writes what is left and exits on its own
}

int TensorBoardFollower::finish(double timeout_s) {
  if (pipe_ >= 0) ::close(pipe_);
  pipe_ = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return exit_status(status);
    }
    if (r < 0 && errno != EINTR) return -1;  // not our child any more: nothing to wait for
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

void LiveTensorBoard::after_step() {
  if (tried_) return;
  tried_ = true;
  try {
    follower_ = std::make_unique<TensorBoardFollower>(run_dir_);
    log_.info(cat("TensorBoard: following ", run_dir_, "/metrics.jsonl into ", run_dir_,
                  "/tensorboard (tensorboard --logdir ", run_dir_, "/tensorboard)"));
  } catch (const std::exception& e) {  // the run goes on: `reel tensorboard` converts it afterwards
    log_.warn(cat("TensorBoard: ", e.what(), "; training goes on (reel tensorboard ", run_dir_, " converts it later)"));
  }
}

void LiveTensorBoard::finish() {
  if (!follower_) return;
  // The child's last pass reads the final lines (a few ms per thousand steps); more than a
  // minute means it is stuck (a hung filesystem): the run is done, so it is left to itself.
  constexpr double wait_s = 60;
  const int rc = follower_->finish(wait_s);
  follower_.reset();
  if (rc == 0) {
    log_.info(cat("TensorBoard: events in ", run_dir_, "/tensorboard"));
  } else {
    log_.warn(cat("TensorBoard: the follower ",
                  rc < 0 ? cat("did not end in ", wait_s, " s") : cat("failed (exit ", rc, ")"),
                  "; its message, if any, is above; reel tensorboard ", run_dir_, " writes the events again"));
  }
}

int run_tensorboard(int argc, char** argv) {
  std::string dir, out;
  bool follow = false;
  po::options_description desc(
      "reel tensorboard RUN_DIR [--out DIR] [--follow]: a run's metrics.jsonl as TensorBoard event files "
      "(then: tensorboard --logdir DIR)");
  desc.add_options()("help,h", "show this help")("run-dir", po::value(&dir)->required(), "run directory")(
      "out", po::value(&out),
      "folder of the event files (default RUN_DIR/tensorboard); its old event files are replaced")(
      "follow", po::bool_switch(&follow), "keep converting the steps a running training adds, until Ctrl-C");
  if (!parse_run_dir_options(argc, argv, desc)) return 0;
  std::vector<std::string> extra;
  if (!out.empty()) extra.insert(extra.end(), {"--out", out});
  if (follow) extra.push_back("--follow");
  // Ctrl-C (--follow's end) goes to the whole foreground group: the script, at its default
  // action, writes its last steps and exits 0; this process waits for it instead of dying.
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &ignore, &old_term);
  const pid_t pid = spawn(script_command(dir, extra), -1);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  const int rc = exit_status(status);
  if (rc != 0) throw std::runtime_error(cat("converting ", dir, " to TensorBoard failed (exit ", rc, ", above)"));
  return 0;
}

}  // namespace reel
