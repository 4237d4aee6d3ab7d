// `reel train` configuration: an INI file whose sections are option groups ([model],
// [data], [parallel], [optim], [run], [dist], [log]) plus command-line overrides of any
// key (--optim.lr 3e-4). Every value is validated before training starts.
#pragma once

#include <string>

#include "dist/logging.hpp"
#include "dist/runtime.hpp"
#include "model/config.hpp"
#include "optim/adamw.hpp"
#include "optim/schedule.hpp"
#include "parallel/parallelize.hpp"

namespace reel {

struct TrainConfig {
  ModelConfig model;
  std::string data;              // HDF5 video file
  int64_t global_batch = 16;     // clips per optimizer step, over all data-parallel ranks
  int64_t micro_batches = 1;     // gradient accumulation: micro-batches per step
  int64_t eval_clips = 16;       // the file's last clips, held out for evaluation
  uint64_t data_seed = 0;
  int dp = 0, sp = 1;            // dp 0: world / sp
  ParallelConfig parallel;
  std::string param_dtype = "auto", reduce_dtype = "float32";  // resolved into parallel.fsdp
  AdamWConfig adamw;
  LrSchedule schedule;           // schedule.total_steps = run.steps
  double clip = 1.0;             // global gradient-norm bound (<= 0: no clipping)
  int64_t steps = 200;
  std::string dir = "runs/latest";
  uint64_t seed = 0;
  int64_t log_every = 10, eval_every = 50;
  double peak_flops = 0;         // per rank, for MFU; 0: the default of the device
  RuntimeConfig runtime;
  LogConfig log;
};

// Parses argv (argv[0] = "train"). Returns false when --help printed the options.
// Throws std::invalid_argument naming the option for anything invalid.
bool parse_train_config(int argc, char** argv, TrainConfig& config);
// Checks that do not need the world size; the rest run once ranks are known.
void validate_train_config(const TrainConfig& config);

}  // namespace reel
