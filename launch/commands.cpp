#include "reel/launch/command.hpp"

#include "reel/launch/plot.hpp"
#include "reel/launch/tensorboard.hpp"
#include "reel/lm/lm_spec.hpp"

namespace reel {

// `reel hang`: explains a hang from the ranks' dumps (launch/hang_cmd.cpp).
int run_hang(int argc, char** argv);

const std::vector<Command>& commands() {
  // The model families this executable trains (model.family): the world model is built
  // in; the language model registers here, as a program's own model would.
  static const bool registered = (register_model_spec(lm_model_spec()), true);
  (void)registered;
  static const std::vector<Command> list = {
      {"data", "write the synthetic physics world (an HDF5 video file) or a text corpus", run_data},
      {"sample", "roll a trained model out on held-out clips and write PNG grids", run_sample},
      {"train", "train a model (the world model, a language model, ...) with FSDP across the job's ranks", run_train},
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
