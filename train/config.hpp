// The training configuration: one struct per owner (model choice, data, mesh, parallel,
// optimizer, schedule, run, runtime, logging), each holding its own defaults, and one
// table of option keys over all of them (visit_train_options) from which the command
// line, the INI file, --help and the resolved configuration written into the run
// directory are all made, so none of them can disagree. A mode is an enum with one names
// table (dist/enum_names.hpp), parsed where the options are read and written by name.
#pragma once

#include <string>

#include "reel/dist/enum_names.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/dist/runtime_options.hpp"
#include "reel/model/config.hpp"
#include "reel/model/rollout.hpp"
#include "reel/optim/adamw.hpp"
#include "reel/optim/schedule.hpp"
#include "reel/parallel/parallelize.hpp"
#include "reel/train/straggler.hpp"

namespace reel {

// model.mlp as chosen: the preset's (world 1b, 7b and long: SwiGLU; the others GELU) unless
// given. Once resolved it holds the model's own, which the written configuration records.
enum class MlpChoice { kPreset, kGelu, kSwiglu };
constexpr EnumNames<MlpChoice, 3> enum_names(MlpChoice) {
  return {{{MlpChoice::kPreset, "preset"}, {MlpChoice::kGelu, "gelu"}, {MlpChoice::kSwiglu, "swiglu"}}};
}

// The model as chosen: a family (train/model_spec.hpp), one of its presets and a few
// overrides, resolved into a ModelConfig.
struct ModelChoice {
  std::string family = "world";
  std::string preset = "tiny";
  AttentionKind attention = AttentionKind::kCausal;
  MlpChoice mlp = MlpChoice::kPreset;
  int64_t depth = 0;                                           // 0: the preset's
  int64_t dim = 0;                                             // 0: the preset's
  ContextSampling context_sampling = ContextSampling::kFixed;  // ModelConfig::context_sampling
  double context_noise = 0.0;                                  // ModelConfig::context_noise
  ModelConfig resolve() const;                                 // throws std::invalid_argument naming the field
};

struct DataConfig {
  std::string path;           // HDF5 video file (reel data writes one)
  int64_t global_batch = 16;  // clips per optimizer step, over all data-parallel ranks
  int64_t micro_batches = 1;  // gradient accumulation: micro-batches per step
  // Clips per rank in one micro-batch; 0: off. When set, micro_batches follows from the
  // data-parallel degree (global_batch / (micro_batch x dp)), so that a job restarted on
  // fewer or more nodes keeps its global batch and each rank's memory (Megatron's
  // micro_batch_size).
  int64_t micro_batch = 0;
  int64_t eval_clips = 16;  // the file's last clips, held out for evaluation
  uint64_t seed = 0;        // shuffling seed
  int prefetch = 2;         // batches read ahead by the loader's thread
  void validate() const;
  // The micro-batch count on dp data-parallel ranks (micro_batches, or derived from
  // micro_batch); throws std::invalid_argument when the batch does not split so.
  int64_t micro_batches_for(int dp) const;
  // The Trainer's rules for the data on dp data-parallel ranks, which reel plan asks too:
  // micro_batches_for(dp), each of those micro-batches divides over the dp ranks
  // (splits), and every rank has held-out clips (eval_clips 0 or >= dp). Returns the
  // micro-batch count; throws std::invalid_argument naming the numbers.
  int64_t layout_micro_batches(int dp) const;
  // Whether a step of global_batch clips in `micro_batches` micro-batches divides over dp ranks.
  bool splits(int64_t micro_batches, int dp) const;
  // Sets micro_batches = layout_micro_batches(dp): once, by whoever knows dp (the Trainer).
  void resolve_micro_batches(int dp) { micro_batches = layout_micro_batches(dp); }
  int64_t micro_clips() const { return global_batch / micro_batches; }  // over all dp ranks
};

// What a step with a NaN or Inf loss or gradient norm does (RunConfig::nonfinite).
enum class NonFinite { kSkip, kStop };
constexpr EnumNames<NonFinite, 2> enum_names(NonFinite) {
  return {{{NonFinite::kSkip, "skip"}, {NonFinite::kStop, "stop"}}};
}

struct RunConfig {
  int64_t steps = 200;
  std::string dir = "runs/latest";
  uint64_t seed = 0;        // initialisation and noise seed
  int64_t log_every = 10;   // progress line every N steps
  int64_t eval_every = 50;  // held-out evaluation every N steps (0: off)
  // Each evaluation that lowers the held-out loss writes the weights to dir/model_best.h5
  // (one full gather and write per improvement; off by default so large runs pay nothing).
  bool keep_best = false;
  double peak_flops = 0;           // per rank, for MFU; 0: measured (CPU) or the card's (GPU)
  std::string resume = "auto";     // auto: the newest complete checkpoint in dir, if any | never | a checkpoint's path
  bool overwrite = false;          // a run directory that holds a run may be started afresh
  bool allow_data_change = false;  // resume although the data file's content differs (docs/checkpoint.md)
  bool lock = true;                // hold run.dir/reel.lock while running (train/run_lock.hpp)
  // A step whose loss or gradient norm is NaN or Inf: skip (no update; stop after
  // max_skips such steps in a row) | stop (at once). Stopping keeps the last good state
  // in a checkpoint and ends with an error.
  NonFinite nonfinite = NonFinite::kSkip;
  int64_t max_skips = 5;
  // Rollout metrics at each evaluation: Euler steps per frame-group (0: none), and the
  // flow time the history is shown at (a model trained with model.context_noise).
  bool plot = true;  // draw run.dir/curves.png at the end (reel plot)
  int64_t rollout_steps = RolloutSpec{}.steps;
  double rollout_context_t = RolloutSpec{}.context_t;
  void validate() const;
};

struct CheckpointConfig {
  int64_t every = 0;  // save every N steps (0: only at the end of the run)
  int keep = 3;       // complete checkpoints kept (the newest); 0: all
  void validate() const;
};

struct TrainConfig {
  ModelChoice model_choice;
  ModelConfig model;  // resolved from model_choice by resolve()
  DataConfig data;
  MeshConfig mesh;
  ParallelConfig parallel;
  AdamWConfig adamw;
  LrSchedule schedule;  // schedule.total_steps = run.steps (resolve())
  double clip = 1.0;    // global gradient-norm bound (<= 0: measure only)
  RunConfig run;
  CheckpointConfig checkpoint;
  RuntimeConfig runtime;
  LogConfig log;
  StragglerConfig straggler;  // log.straggler_*: the slow rank, named (train/straggler.hpp)
  bool tensorboard =
      false;  // log.tensorboard: rank 0 follows metrics.jsonl into dir/tensorboard (launch/tensorboard.hpp)

  // Derives the dependent values (the model from its choice, the schedule's length),
  // then validates everything that does not need the world size. Throws
  // std::invalid_argument naming the option.
  void resolve();
};

// Every option key with its field and help, in the order --help and the written
// configuration list them. The INI section is the part of the key before the dot. A
// mode's help says what its choices mean; --help lists them from its names table.
template <typename Visit>
void visit_train_options(TrainConfig& c, Visit&& v) {
  v("model.family", c.model_choice.family,
    "world (the video world model) | lm (a causal language model, lm/) | a family your program registers");
  v("model.preset", c.model_choice.preset, "world: tiny | small | long_cpu | long | 1b | 7b; lm: tiny | small");
  v("model.attention", c.model_choice.attention, "causal: frame-causal");
  v("model.mlp", c.model_choice.mlp, "preset: the preset's (world 1b, 7b, long: swiglu; the others gelu)");
  v("model.depth", c.model_choice.depth, "blocks (0: the preset's)");
  v("model.dim", c.model_choice.dim, "width (0: the preset's)");
  v("model.context_sampling", c.model_choice.context_sampling,
    "random: per clip, the history is the first k groups, k from context_groups to groups - 1");
  v("model.context_noise", c.model_choice.context_noise, "history groups noised to t ~ U(0, this) in training");
  v("data.path", c.data.path, "HDF5 video file (reel data writes one)");
  v("data.global_batch", c.data.global_batch, "clips per step over all ranks");
  v("data.micro_batches", c.data.micro_batches, "gradient accumulation steps");
  v("data.micro_batch", c.data.micro_batch,
    "clips per rank per micro-batch (0: off); when set, data.micro_batches = global_batch / (this x dp), kept across "
    "world sizes");
  v("data.eval_clips", c.data.eval_clips, "last clips of the file held out");
  v("data.seed", c.data.seed, "shuffling seed");
  v("data.prefetch", c.data.prefetch, "batches the loader reads ahead");
  v("parallel.dp", c.mesh.dp, "data-parallel degree (0: world / sp)");
  v("parallel.sp", c.mesh.sp, "sequence-parallel degree");
  v("parallel.sp_mode", c.parallel.sequence.mode, "ulysses: all-to-all; hybrid: all-to-all inside, ring across");
  v("parallel.ulysses", c.parallel.sequence.ulysses,
    "hybrid: the all-to-all degree (divides parallel.sp; 0 otherwise)");
  v("parallel.sp_balance", c.parallel.sequence.balance, "how ring chunks are dealt; zigzag evens frame-causal work");
  v("parallel.shard_group", c.mesh.shard_group,
    "HSDP shard group: ranks (0: FSDP over every rank) | node (shard inside each node, replicate across)");
  v("parallel.activation_checkpoint", c.parallel.activation_checkpoint.mode,
    "every: each k-th block, k the next option");
  v("parallel.activation_checkpoint_every", c.parallel.activation_checkpoint.every,
    "k for 'every': blocks 0, k, 2k, ...");
  v("parallel.reshard_after_forward", c.parallel.fsdp.reshard_after_forward, "ZeRO-3 (true) or keep until backward");
  v("parallel.prefetch", c.parallel.fsdp.prefetch,
    "prefetch the next unit's all-gather; auto: on GPUs, off on CPU ranks");
  v("parallel.max_gathered", c.parallel.fsdp.max_gathered, "block units gathered or in flight at once");
  v("parallel.async_reduce", c.parallel.fsdp.async_reduce,
    "issue each unit's gradient reduce-scatter when its backward completes, wait before the optimizer; auto: on "
    "GPUs, off on CPU ranks");
  v("parallel.reduce_in_flight_mb", c.parallel.fsdp.reduce_in_flight_mb,
    "async_reduce: MiB of unreduced gradients in flight at most (one unit always)");
  v("parallel.grad_accumulation", c.parallel.fsdp.grad_accumulation,
    "with data.micro_batches > 1; sharded: reduce-scatter every micro-batch, holding 1/N of the gradients; "
    "unsharded: keep whole gradients, reduce once per step");
  v("parallel.param_dtype", c.parallel.fsdp.param_dtype, "gather/compute dtype; auto: bfloat16 on GPU, float32 on CPU");
  v("parallel.reduce_dtype", c.parallel.fsdp.reduce_dtype, "gradient reduce-scatter dtype; auto: float32");
  v("optim.lr", c.schedule.lr, "peak learning rate");
  v("optim.warmup", c.schedule.warmup_steps, "linear warm-up steps");
  v("optim.decay", c.schedule.decay, "");
  v("optim.min_ratio", c.schedule.min_ratio, "final lr / peak lr");
  v("optim.weight_decay", c.adamw.weight_decay, "AdamW weight decay (not on biases, norms, embeddings)");
  v("optim.beta1", c.adamw.beta1, "AdamW beta1");
  v("optim.beta2", c.adamw.beta2, "AdamW beta2");
  v("optim.eps", c.adamw.eps, "AdamW epsilon");
  v("optim.clip", c.clip, "global gradient-norm clip (<= 0: off)");
  v("run.steps", c.run.steps, "optimizer steps");
  v("run.dir", c.run.dir, "run directory (config.ini, metrics.jsonl, checkpoints/, model.h5)");
  v("run.seed", c.run.seed, "initialisation and noise seed");
  v("run.log_every", c.run.log_every, "progress line every N steps");
  v("run.eval_every", c.run.eval_every, "held-out evaluation every N steps (0: off)");
  v("run.keep_best", c.run.keep_best,
    "write the weights of each evaluation that lowers the held-out loss to RUN_DIR/model_best.h5 (model.h5 stays the "
    "last)");
  v("run.peak_flops", c.run.peak_flops, "peak FLOP/s per rank for MFU (0: measured on CPU, the card's on GPU)");
  v("run.resume", c.run.resume,
    "auto (the run directory's newest complete checkpoint, if any) | never | PATH of a checkpoint");
  v("run.overwrite", c.run.overwrite,
    "start afresh in a run directory that holds a run (its checkpoints and metrics are removed)");
  v("run.allow_data_change", c.run.allow_data_change,
    "resume although data.path's clips differ from the checkpoint's data file (clip count or content hash)");
  v("run.lock", c.run.lock,
    "refuse a second run into run.dir while this one runs (false: only where the filesystem holds no locks)");
  v("run.nonfinite", c.run.nonfinite,
    "a NaN/Inf loss or gradient norm; skip: drop the update; stop: checkpoint the last good state, fail");
  v("run.max_skips", c.run.max_skips, "skip: stop after this many non-finite steps in a row");
  v("run.plot", c.run.plot, "draw the run's curves as RUN_DIR/curves.png at the end (matplotlib)");
  v("run.rollout_steps", c.run.rollout_steps,
    "rollout metrics at each evaluation: Euler steps per frame-group (0: off)");
  v("run.rollout_context_t", c.run.rollout_context_t, "flow time the rollouts show their history at");
  v("checkpoint.every", c.checkpoint.every, "save a checkpoint every N steps (0: only at the end)");
  v("checkpoint.keep", c.checkpoint.keep, "complete checkpoints kept, the newest (0: all)");
  visit_runtime_options(c.runtime, c.log, v);
  v("log.straggler_every", c.straggler.every,
    "train: every N steps the ranks compare their compute and data-wait time over the last N steps and the log and "
    "metrics.jsonl name a rank slower than the median (0: off; one 24-byte all-gather per N steps)");
  v("log.straggler_threshold", c.straggler.threshold,
    "train: a rank whose compute + data wait over the window exceeds the median rank's by this fraction is named a "
    "straggler (its victims wait in communication and are not named)");
  v("log.tensorboard", c.tensorboard,
    "train: write TensorBoard event files to RUN_DIR/tensorboard as the run goes (a child process of rank 0 "
    "follows metrics.jsonl; tensorboard --logdir RUN_DIR/tensorboard; reel tensorboard converts any run later)");
}

// The configuration as an INI file that `reel train --config` reads back to the same
// run; write_config_ini throws std::runtime_error naming the file when it cannot write.
std::string config_ini(const TrainConfig& config);
void write_config_ini(const TrainConfig& config, const std::string& path);

}  // namespace reel
