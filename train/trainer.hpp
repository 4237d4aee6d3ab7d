// The Trainer: one owner for a training run, and what both `reel train` and the parity
// tests run.
//
//   build     Trainer(config, world): mesh -> the model.family's deferred model
//             (train/model_spec.hpp) -> parallelize() (sequence split, checkpointing,
//             FSDP) -> AdamW over the shards -> loader (the ranks of one sp group read
//             the same samples; each feeds the model its tokens)
//   step      forward_backward(): the step's micro-batches, gradients reduced into each
//             FSDP unit's fp32 gradient shard; optimizer_step(): clip by the global norm,
//             AdamW at the schedule's learning rate; train_step(): both, timed
//   evaluate  the held-out loss; the best one's weights in run.dir/model_best.h5
//             (run.keep_best) and the held-out trend at the end of the run
//   fit       the loop: steps, evaluation, metrics.jsonl, progress, step hooks (where
//             state checkpoints plug in), the final weights
//
// Loss normalisation: each micro-batch's loss is the family's sum of per-target losses
// (squared errors of the world model's velocity, a language model's cross-entropy)
// divided by the target count of the whole global batch, so the SUM of the per-rank,
// per-micro-batch losses (and FSDP's SUM reduce-scatter of their gradients) is the
// global mean, whatever the layout.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reel/checkpoint/saver.hpp"
#include "reel/data/loader.hpp"
#include "reel/data/world_metrics.hpp"
#include "reel/dist/logging.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/dist/trace.hpp"
#include "reel/optim/adamw.hpp"
#include "reel/parallel/parallelize.hpp"
#include "reel/train/config.hpp"
#include "reel/train/model_spec.hpp"
#include "reel/train/run_lock.hpp"

namespace reel {

// What one optimizer step did: the global loss, the gradient norm before clipping, and
// where the time went.
struct StepResult {
  int64_t step = 0;  // 1-based: the number of completed steps
  double loss = 0;   // global mean over the step's target elements
  double grad_norm = 0;
  double lr = 0;
  double step_s = 0, comm_s = 0, data_s = 0;  // wall time; exposed communication; data wait
  bool skipped = false;                       // the loss or the gradient norm was NaN/Inf: no update was applied
};

// The held-out losses of a run, for run.keep_best and the end-of-run report. An
// evaluation's training loss is the mean over the steps since the previous evaluation (or
// since the start), so that the two trends compare like with like.
struct HeldOutTrend {
  int64_t best_step = -1;  // -1: no evaluation yet
  double best_loss = 0, best_train = 0;
  int64_t last_step = -1;
  double last_loss = 0, last_train = 0;
  // Whether an evaluation at `step` becomes the best: a finite loss below the best so far,
  // or the step the best came from evaluated again (a resume that re-runs steps past its
  // checkpoint: the weights kept then are those of a discarded continuation).
  bool improves(int64_t step, double loss) const;
  void note(int64_t step, double loss, double train);  // an evaluation: the last, maybe the best
  // The held-out loss rose since the best while the training loss fell.
  bool overfits() const;
};

// The end-of-run line about the held-out trend ("" with no evaluation): the best and the
// last evaluation, and, when the last is worse, by how much and whether the training loss
// fell meanwhile (overfitting its train_clips clips, in epochs of steps x global_batch);
// which weights model_best.h5 holds when keeps_best. Never alarming when the last is best.
std::string held_out_report(const HeldOutTrend& t, int64_t train_clips, int64_t global_batch, bool keeps_best);

class Trainer {
 public:
  // Collective over world: resolves the mesh, builds everything, and (rank 0) writes the
  // resolved configuration to run.dir/config.ini. config must be resolve()d. Throws
  // std::invalid_argument for a configuration that cannot run on this world or data.
  Trainer(const TrainConfig& config, const CommunicatorPtr& world);
  ~Trainer();

  // Forward and backward of step `step` (0-based) over its micro-batches. Afterwards
  // each unit's grad shard holds its reduced, unclipped gradient. Returns the global
  // loss (collective). data_seconds: time spent waiting for batches.
  double forward_backward(int64_t step, double* data_seconds = nullptr);
  // Clips by the global gradient norm and applies AdamW at the schedule's lr for `step`.
  // Returns the norm before clipping (collective over the shard group). A non-finite norm
  // applies no update (the parameters and moments stay as they were).
  double optimizer_step(int64_t step);
  // forward_backward + optimizer_step, timed; a non-finite loss skips the optimizer.
  StepResult train_step(int64_t step);
  // Held-out loss: the file's last data.eval_clips samples with fixed randomness, split
  // over the data-parallel ranks (collective); NaN when data.eval_clips is 0.
  double evaluate();
  // World-model metrics (data/world_metrics.hpp) of rollouts of the same held-out clips,
  // under their actions and reversed ones, with run.rollout_steps Euler steps: each dp
  // rank rolls out its share through the sharded model (every sp rank its tokens), and
  // the sums are all-reduced. Collective; the same figures at every layout. Needs a
  // world model (frame-causal), data with 2 action dimensions and data.eval_clips > 0.
  RolloutMetrics evaluate_rollouts();
  // Whether fit() measures rollouts at each evaluation (run.rollout_steps > 0 and the
  // model and data allow it).
  bool measures_rollouts() const;
  // Writes the fp32 parameters to a weights file (data/weights.hpp). Collective: every
  // rank gathers one unit at a time; rank 0 writes it.
  void save_weights(const std::string& path);
  // Collective: snapshots this rank's shards, moments and the training state after
  // `completed` steps, and writes them in the background (checkpoint/saver.hpp).
  // Returns the seconds the snapshot blocked this thread (waiting first for a previous
  // save still in flight: last_save_wait_seconds()).
  double save_checkpoint(int64_t completed);
  double last_save_wait_seconds() const { return last_save_wait_s_; }
  // Collective: finishes a checkpoint in flight when every rank's writer is done (after
  // every step), or waits for it (wait = true).
  void settle_checkpoints(bool wait);
  AsyncSaver& saver() { return *saver_; }
  // Asks for a checkpoint after the current step (thread- and signal-safe: sets a flag).
  // Every rank learns of it in the step's loss reduction, so all save after the same step.
  void request_checkpoint() { save_request_ = true; }
  // Asks the run to stop after the current step, with a checkpoint (thread- and
  // async-signal-safe: sets a flag; preemption, SIGTERM, Ctrl-C). Agreed like a
  // checkpoint request: every rank finishes the same step, saves, waits for the save.
  void request_stop() { stop_request_ = true; }
  // The step training starts from: 0, or the resumed checkpoint's.
  int64_t start_step() const { return start_step_; }
  std::string checkpoints_dir() const { return c_.run.dir + "/checkpoints"; }
  // The whole run: from start_step() to run.steps with evaluation, metrics.jsonl and
  // progress, checkpoints every checkpoint.every steps and at the end, step hooks after
  // every step, and the final weights in run.dir/model.h5. Returns false when it stopped
  // early on request (request_stop): the checkpoint of the last step is then complete on
  // disk and resuming continues the run; no weights are written.
  bool fit();
  // The held-out losses so far (the best carried over a resume: restore_best()).
  const HeldOutTrend& held_out() const { return held_out_; }
  std::string best_weights_path() const { return c_.run.dir + "/model_best.h5"; }
  // Called after every step of fit() with its result (on every rank).
  void add_step_hook(std::function<void(const StepResult&)> hook) { hooks_.push_back(std::move(hook)); }

  const TrainConfig& config() const { return c_; }
  const ProcessMesh& mesh() const { return mesh_; }
  FsdpModel& fsdp() { return *fsdp_; }
  SequenceParallel& sequence() { return *sequence_; }  // the token split (sp = 1: every token)
  Model& model() { return *model_; }                   // parameters are views FSDP fills per unit
  const ModelSpec& spec() const { return spec_; }      // the model.family
  FlatAdamW& optimizer() { return opt_; }
  const Logger& log() const { return log_; }
  int64_t parameter_count();

 private:
  // What the family computes its loss for at `step` (-1: evaluation): this rank's tokens,
  // under FSDP.
  LossContext loss_context(int64_t step);
  at::Tensor micro_loss(const Batch& batch, int64_t step);
  std::vector<UnitShard> unit_shards();
  // Resolves run.resume against the run directory, loads the checkpoint (falling back to
  // older complete ones under auto), and returns where the data continues.
  DataPosition resume_or_start();
  void stop_with_checkpoint(int64_t step);  // collective: a requested stop, once step's checkpoint is complete
  void finish_fit(double seconds);
  // Collective: trace_->at_step(step), or trace_->finish() with `finish`; a failure is a
  // warning and ends the tracing, not the run.
  void trace_step(int64_t step,
                  bool finish = false);  // collective: the last checkpoint and the weights, then the run's summary
  void remember_data_identity();         // collective: the data file's hash and clip count, from rank 0
  // Collective: loads checkpoint `dir` into the shards; "" when every rank loaded it,
  // else the reason (the same on every rank: the lowest failing rank's).
  std::string try_resume(const std::string& dir);
  // Collective: removes run.dir's checkpoints and metrics (rank 0), saying `why`.
  void clear_run_dir(const std::string& why);
  // Collective: rank 0 takes run.dir's lock (run.lock); throws on every rank when it
  // cannot (another run holds it).
  void lock_run_dir();
  // Collective: rank 0's `text` on every rank (decisions that read a shared filesystem are
  // made once, by rank 0, so that no rank takes another path through the collectives).
  std::string from_rank0(const std::string& text);
  // Collective: the error of the lowest rank whose `error` is set, with " (rank R)" when
  // that is not this rank; "" when no rank has one.
  std::string first_error(const std::string& error);
  // Collective: throws on every rank when `error` is set on any, with the first failing
  // rank's reason: "`what` failed: reason" (just the reason when `what` is empty).
  void agree_or_throw(const std::string& error, const std::string& what);
  // Collective, after resume_or_start(): a fresh run removes a model_best.h5 of an earlier
  // attempt; a resumed one carries on from its best (model_best.h5's attributes with
  // run.keep_best, else the best eval_loss of metrics.jsonl up to the resumed step).
  void restore_best();
  // Collective: records an evaluation of step `step` (training loss: the mean since the
  // previous one) and, with run.keep_best, writes model_best.h5 when it is the best.
  void note_evaluation(int64_t step, double eval);
  // Collective: the weights to model_best.h5 with attributes step, eval_loss and
  // train_loss, written beside it and renamed into place (a crash never leaves half a file).
  void save_best(int64_t step, double eval, double train);
  void report_held_out();
  void log_start(double peak, const std::string& source);
  void log_progress(const StepResult& r, double mfu, double tokens_per_s, double eval, double eta);
  // run.nonfinite for a skipped step: counts it, and throws (after checkpointing the
  // last good state) when the policy says stop.
  void handle_nonfinite(const StepResult& r);
  // Collective: compares every rank's collective fingerprint with rank 0's; throws on
  // every rank, naming the ranks that differ and their last collectives, if any do.
  void check_desync(int64_t step);

  TrainConfig c_;
  ProcessMesh mesh_;
  Logger log_;
  // Rank 0, from the constructor's first statement until the Trainer is gone (run.lock);
  // declared before the loader and the saver so that it outlives a save still in flight.
  RunDirLock run_lock_;
  const ModelSpec& spec_;
  DataFileInfo data_;
  std::shared_ptr<Model> model_;
  std::shared_ptr<SequenceParallel> sequence_;
  std::unique_ptr<FsdpModel> fsdp_;
  FlatAdamW opt_;
  std::unique_ptr<SampleLoader> loader_;
  std::unique_ptr<AsyncSaver> saver_;
  int64_t start_step_ = 0, last_checkpoint_ = -1;
  int64_t rss_start_ = 0;     // resident bytes before the model was built (metrics: rss_start_bytes)
  int64_t skips_in_row_ = 0;  // non-finite steps in a row (run.nonfinite skip)
  HeldOutTrend held_out_;
  double train_loss_sum_ = 0;  // finite step losses since the last evaluation, and their count
  int64_t train_loss_steps_ = 0;
  DataPosition resumed_position_;
  double last_save_wait_s_ = 0;
  std::atomic<bool> save_request_{false};  // this rank was asked (request_checkpoint)
  bool save_requested_ = false;            // some rank was asked, learnt in the last step
  std::atomic<bool> stop_request_{false};  // this rank was asked (request_stop)
  bool stop_requested_ = false;            // some rank was asked, learnt in the last step
  std::vector<std::function<void(const StepResult&)>> hooks_;
  std::unique_ptr<trace::Session> trace_;  // log.trace: the timeline of the traced steps (dist/trace.hpp)
};

}  // namespace reel
