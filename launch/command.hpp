// The reel executable's subcommands. Each takes its own arguments (argv[0] is the
// subcommand's name) and returns the process exit code; errors are thrown and reported
// by main(), which alone decides how the process ends.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace reel {

// Exit codes of the reel executable: 0 done; 1 an error (printed, naming the rank and
// host); 2 a usage error; kExitStopped: `reel train` stopped on a signal (SIGTERM,
// SIGINT, SIGUSR1: preemption or a time limit) after finishing its step and writing a
// complete checkpoint; the same command resumes it. 75 is EX_TEMPFAIL ("try again").
constexpr int kExitStopped = 75;

struct Command {
  std::string name;
  std::string summary;
  std::function<int(int argc, char** argv)> run;
};

// Every subcommand this build provides, in the order `reel --help` lists them.
const std::vector<Command>& commands();

// `reel smoke`: checks every collective of the communication layer across the mesh.
int run_smoke(int argc, char** argv);
// `reel data`: writes the synthetic physics world (HDF5 video schema).
int run_data(int argc, char** argv);
// `reel train`: trains the world model with FSDP across the job's ranks.
int run_train(int argc, char** argv);
// `reel sample`: rolls a model out on held-out clips, writes PNG grids.
int run_sample(int argc, char** argv);
// `reel plan`: estimates every layout of a training job on a cluster.
int run_plan(int argc, char** argv);
// `reel ckpt`: lists, verifies, inspects and exports state checkpoints.
int run_ckpt(int argc, char** argv);

}  // namespace reel
