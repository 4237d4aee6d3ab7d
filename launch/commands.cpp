#include "launch/command.hpp"
#include "launch/plot.hpp"
#include "launch/tensorboard.hpp"

namespace reel {

// `reel hang`: explains a hang from the ranks' dumps (launch/hang_cmd.cpp).
int run_hang(int argc, char** argv);

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"data", "write the synthetic physics world as an HDF5 video file", run_data},
      {"sample", "roll a trained model out on held-out clips and write PNG grids", run_sample},
      {"train", "train the world model with FSDP across the job's ranks", run_train},
      {"plan", "estimate memory, step time and MFU of every layout of a job on a cluster", run_plan},
      {"plot", "draw a run's curves (metrics.jsonl) as a PNG", run_plot},
      {"tensorboard", "write a run's metrics.jsonl as TensorBoard event files", run_tensorboard},
      {"ckpt", "list, verify, inspect or export state checkpoints", run_ckpt},
      {"hang", "explain a hang from the dumps the ranks wrote to the run directory", run_hang},
      {"smoke", "run every collective across a dp x sp mesh and check the results", run_smoke},
  };
  return list;
}

}  // namespace reel
