// `reel train`: trains a model (model.family) with FSDP across the ranks of the job. A thin
// command over the Trainer (train/trainer.hpp): options in, exit code out.
//
// Signals: SIGTERM, SIGINT and SIGUSR1 (Slurm's warning before a time limit or a
// preemption, which the batch script passes on) ask the Trainer to stop: every rank
// finishes the current step, a checkpoint is written and completed, and the process
// exits with kExitStopped. A second SIGINT (Ctrl-C) ends it at once.
#include <boost/program_options.hpp>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "reel/dist/node_monitor.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"
#include "reel/launch/plot.hpp"
#include "reel/launch/tensorboard.hpp"
#include "reel/plan/dry_run.hpp"
#include "reel/train/trainer.hpp"

namespace po = boost::program_options;

namespace reel {
namespace {

std::atomic<Trainer*> g_trainer{nullptr};
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_signal = sig;  // only async-signal-safe work here: a flag, and the Trainer's flag
  if (Trainer* t = g_trainer.load()) t->request_stop();
}

void install_stop_handlers() {
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | (sig == SIGINT ? SA_RESETHAND : 0);  // Ctrl-C twice: at once
    sigaction(sig, &sa, nullptr);
  }
}

// The data file must be readable before any rank starts: a missing one is the first
// thing a new user meets (the README's commands train on the demo's runs/world.h5), so
// it is a usage error naming the reason and the command that writes data of the model's
// shape (its family's data_hint, train/model_spec.hpp), once per rank and without an MPI
// abort.
void require_data_file(const TrainConfig& c) {
  const std::string& path = c.data.path;
  if (::access(path.c_str(), R_OK) == 0) return;
  const std::string reason = std::strerror(errno);
  const auto folder = std::filesystem::path(path).parent_path();
  const bool no_folder = !folder.empty() && !std::filesystem::exists(folder);
  // As many samples as the held-out ones plus 64 steps' worth: the demo's 1,088 for tiny.
  const std::string how =
      model_spec(c.model.family).data_hint(c.model, path, c.data.eval_clips + 64 * c.data.global_batch);
  throw UsageError(cat("data.path ", path, ": ", reason,
                       no_folder ? cat(" (the folder ", folder.string(), " does not exist)") : "", "; ", how));
}

}  // namespace

int run_train(int argc, char** argv) {
  install_stop_handlers();  // first: a stop can arrive while MPI and the model start
  TrainConfig c;            // the defaults, each from the struct that owns it
  std::string config_file;
  po::options_description desc(
      "reel train [CONFIG.ini] [--key value ...]\n"
      "An INI file's sections are the part of each key before the dot; the command line wins over the file");
  bool dry_run = false;
  desc.add_options()("help,h", "show this help")("config", po::value(&config_file), "INI configuration file")(
      "dry-run", po::bool_switch(&dry_run),
      "print the mesh, groups, parameters, FLOPs per step and estimated memory per rank; do not train");
  visit_train_options(c, OptionAdder(desc));
  if (!parse_options(argc, argv, desc, "config")) return 0;
  try {
    c.resolve();  // bad values fail here, before MPI starts
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!dry_run) require_data_file(c);  // the dry run needs no data
  if (dry_run) {
    Runtime runtime(c.runtime);
    const std::string report = dry_run_report(c, runtime.world());
    if (runtime.world()->rank() == 0) std::cout << report << std::flush;
    return 0;
  }
  Runtime runtime(c.runtime);
  // A node lost while the Trainer starts (loading a large checkpoint) is reported too.
  NodeMonitor::set_report_dir(c.run.dir);
  Trainer trainer(c, runtime.world());
  struct Registered {  // the handler never sees a Trainer that is gone, however fit() ends
    explicit Registered(Trainer* t) { g_trainer = t; }
    ~Registered() { g_trainer = nullptr; }
  } registered(&trainer);
  if (g_signal != 0) trainer.request_stop();   // arrived while the Trainer was being built
  std::optional<LiveTensorBoard> tensorboard;  // rank 0, --log.tensorboard: TensorBoard live
  if (runtime.world()->rank() == 0 && c.tensorboard) {
    tensorboard.emplace(c.run.dir, trainer.log());
    trainer.add_step_hook([&tensorboard](const StepResult&) { tensorboard->after_step(); });
  }
  const bool finished = trainer.fit();
  // Every rank is past the run's last collective: from here ranks leave at their own pace.
  NodeMonitor::stop();
  if (tensorboard) tensorboard->finish();  // finished or stopped: every written step converted
  if (finished) {
    if (runtime.world()->rank() == 0 && c.run.plot) {
      // The run is done and saved: a plot that cannot be drawn is a warning, not a failure.
      std::string output;
      if (plot_run(c.run.dir, "", &output) == 0) {
        trainer.log().info(cat("reel train: curves in ", c.run.dir, "/curves.png"));
      } else {
        trainer.log().warn(cat("reel train: the curves could not be drawn (reel plot ", c.run.dir,
                               " retries; scripts/setup.sh installs matplotlib): ", output));
      }
    }
    return 0;
  }
  if (g_signal != 0) {
    trainer.log().warn(cat("reel train: stopped by ", strsignal(g_signal), " (exit ", kExitStopped, ")"));
  }
  return kExitStopped;
}

}  // namespace reel
