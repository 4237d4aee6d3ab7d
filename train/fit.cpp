// Trainer::fit: the training loop with its metrics, evaluation, progress, checkpoints
// and hooks.
#include <chrono>
#include <cmath>
#include <optional>

#include "reel/dist/traffic.hpp"
#include "reel/train/memory.hpp"
#include "reel/train/metrics.hpp"
#include "reel/train/straggler.hpp"
#include "reel/train/throughput.hpp"
#include "reel/train/trainer.hpp"

#ifdef REEL_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace reel {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int64_t device_peak_bytes(const at::Device& device) {
#ifdef REEL_HAVE_CUDA
  if (device.is_cuda()) {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return 0;
}

// How a step's time and throughput read against the peak.
struct Rates {
  double tokens_per_s = 0, mfu = 0, hfu = 0;
};

// What happened to checkpoints around one step.
struct CheckpointEvents {
  bool in_flight = false;  // a save was being written while the step ran
  double snapshot_s = -1;  // a save started after the step: its blocking snapshot
  double wait_s = 0;       // and how long it first waited for the previous save
  bool completed = false;  // a save finished (complete or failed) after the step
};

nlohmann::json metrics_line(const StepResult& r, const Rates& rate, const CheckpointEvents& ck,
                            const AsyncSaver& saver) {
  nlohmann::json line = {{"step", r.step},
                         {"loss", r.loss},
                         {"lr", r.lr},
                         {"grad_norm", r.grad_norm},
                         {"tokens_per_s", rate.tokens_per_s},
                         {"mfu", rate.mfu},
                         {"hfu", rate.hfu},
                         {"step_time_s", r.step_s},
                         {"compute_s", std::max(0.0, r.step_s - r.comm_s - r.data_s)},
                         {"comm_exposed_s", r.comm_s},
                         {"data_wait_s", r.data_s},
                         {"rss_bytes", resident_bytes()},
                         {"rss_peak_bytes", peak_resident_bytes()},
                         {"checkpoint_in_flight", ck.in_flight},
                         {"skipped", r.skipped}};
  if (ck.snapshot_s >= 0) {
    line["checkpoint_snapshot_s"] = ck.snapshot_s;
    line["checkpoint_wait_s"] = ck.wait_s;
  }
  if (ck.completed) {
    line["checkpoint_write_s"] = saver.write_seconds();
    line["checkpoint_bytes"] = saver.bytes_written();
  }
  return line;
}

// Rank 0's metrics.jsonl, continued after `resume_from` (-1: a fresh file); `error` says
// why it could not be opened.
std::unique_ptr<MetricsWriter> open_metrics(const std::string& dir, int64_t resume_from, const Logger& log,
                                            std::string& error) {
  try {
    auto metrics = std::make_unique<MetricsWriter>(dir + "/metrics.jsonl", resume_from);
    if (metrics->dropped() > 0) {
      log.warn(cat(dir, "/metrics.jsonl: dropped ", metrics->dropped(),
                   " line(s) that were not whole JSON "
                   "(a crash in the middle of a write, by an earlier run)"));
    }
    return metrics;
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
}

void log_rollouts(const Logger& log, int64_t step, const RolloutMetrics& m) {
  log.info(cat("step ", step, " rollouts of ", m.clips(), " held-out clips: MSE ", fixed(m.mse(), 4), " vs copy-last ",
               fixed(m.mse_copy(), 4), " (", fixed(m.mse() / m.mse_copy(), 2), "x); agent error ",
               fixed(m.agent_error(), 2), " vs ", fixed(m.agent_error_copy(), 2), " px (",
               fixed(m.agent_error() / m.agent_error_copy(), 2), "x); action gain ", fixed(m.action_gain(), 2)));
}

}  // namespace

void Trainer::log_start(double peak, const std::string& source) {
  log_.info(cat("reel train: ", c_.model.name(), " (", fixed(parameter_count() / 1e6, 2), "M parameters), ",
                mesh_.describe(), ", backend ", mesh_.world().backend(), ", global batch ", c_.data.global_batch, " x ",
                c_.data.micro_batches, " micro"));
  log_.info(cat("placement: ", mesh_.placement()));
  for (const auto& w : mesh_.warnings()) log_.warn(cat("placement: ", w));
  log_.info(cat("peak ", fixed(peak / 1e9, 1), " GFLOP/s per rank (", source, "); MFU counts model FLOPs, HFU ",
                "adds activation-checkpoint recomputation"));
}

void Trainer::log_progress(const StepResult& r, double mfu, double tokens_per_s, double eval, double eta) {
  log_.info(cat("step ", r.step, "/", c_.run.steps, "  loss ", fixed(r.loss, 4), "  lr ", r.lr, "  grad_norm ",
                fixed(r.grad_norm, 3), "  ", fixed(tokens_per_s, 0), " tok/s  mfu ", fixed(100 * mfu, 2), "%  step ",
                fixed(r.step_s * 1e3, 1), " ms (comm ", fixed(r.comm_s * 1e3, 1), ", data ", fixed(r.data_s * 1e3, 1),
                ")  ", std::isnan(eval) ? "" : "eval " + fixed(eval, 4) + "  ", "eta ", fixed(eta, 0), " s"));
}

bool Trainer::fit() {
  const auto dev = mesh_.world().device();
  // Collective: on CPU each node's first rank reads its host's recorded peak or measures it
  // (train/throughput.hpp) while the node's other ranks wait.
  const auto peak = peak_flops(mesh_, c_.model, c_.data.micro_clips() / mesh_.dp() * c_.model.tokens(),
                               c_.parallel.fsdp.param_type(dev), dev, c_.run.peak_flops);
  const auto flops = step_flops(spec_, c_.model, c_.data.global_batch, c_.parallel.activation_checkpoint);
  log_start(peak.per_rank, peak.source);
  for (const auto& w : peak.warnings) log_.warn(w);
  std::unique_ptr<MetricsWriter> metrics;
  std::string error;
  if (mesh_.world_rank() == 0)
    metrics = open_metrics(c_.run.dir, last_checkpoint_ >= 0 ? start_step_ : -1, log_, error);
  agree_or_throw(error, "opening the metrics");
  const double machine_peak = peak.world;                        // the sum of the ranks' peaks (nodes may differ)
  StragglerWatch stragglers(c_.straggler, mesh_.world(), log_);  // collective (host names) when on
  bool warned = false;
  const auto run_start = std::chrono::steady_clock::now();
  for (int64_t step = start_step_; step < c_.run.steps; ++step) {
    CheckpointEvents ck;
    ck.in_flight = saver_->in_flight();
    const auto traffic_before = traffic::snapshot();
    const auto internode_before = traffic::snapshot_internode();
    const StepResult r = train_step(step);
    const auto step_traffic = traffic::since(traffic_before, traffic::snapshot());  // this rank's, by group and call
    const auto step_internode =
        traffic::since(internode_before, traffic::snapshot_internode());  // of them, to other nodes
    handle_nonfinite(r);  // may stop the run (an error, with the last good state saved)
    if (!r.skipped) train_loss_sum_ += r.loss, ++train_loss_steps_;  // an evaluation's training loss
    if (c_.runtime.desync_every > 0 && r.step % c_.runtime.desync_every == 0) check_desync(r.step);
    const Rates rate{double(c_.data.global_batch * c_.model.tokens()) / r.step_s, flops.model / r.step_s / machine_peak,
                     flops.hardware / r.step_s / machine_peak};
    if (rate.mfu > 1.0 && !warned) {
      log_.warn(cat("MFU ", fixed(100 * rate.mfu, 1), "% is above 100%: the peak of ", fixed(peak.per_rank / 1e9, 1),
                    " GFLOP/s per rank is too low for this machine; state one with --run.peak_flops"));
      warned = true;
    }
    const bool last = r.step == c_.run.steps;
    settle_checkpoints(false);
    const bool every = c_.checkpoint.every > 0 && r.step % c_.checkpoint.every == 0;
    if ((every || save_requested_ || stop_requested_) && !last) {
      ck.snapshot_s = save_checkpoint(r.step);
      ck.wait_s = last_save_wait_s_;
    }
    ck.completed = saver_->take_finished();  // here, or inside the new save's wait
    const bool eval_now = c_.run.eval_every > 0 && c_.data.eval_clips > 0 && (r.step % c_.run.eval_every == 0 || last);
    const double eval = eval_now ? evaluate() : std::nan("");
    std::optional<RolloutMetrics> rollouts;
    if (eval_now && measures_rollouts()) rollouts = evaluate_rollouts();
    // Collective every log.straggler_every steps, on every rank: the window's phase sums.
    const auto straggler =
        stragglers.after_step(r.step, {std::max(0.0, r.step_s - r.comm_s - r.data_s), r.comm_s, r.data_s});
    if (metrics) {
      auto line = metrics_line(r, rate, ck, *saver_);
      if (!straggler.is_null()) line["straggler"] = straggler;
      line["persistent_bytes"] = fsdp_->shard_bytes() + opt_.state_bytes();
      line["comm_bytes"] = step_traffic;
      line["comm_bytes_internode"] = step_internode;
      line["rss_start_bytes"] = rss_start_;
      line["device_peak_bytes"] = device_peak_bytes(dev);
      if (eval_now) line["eval_loss"] = eval;
      if (rollouts) line.update(nlohmann::json::parse("{" + rollouts->json_fields() + "}"));
      metrics->write(line);
    }
    if (rollouts) log_rollouts(log_, r.step, *rollouts);
    if (r.step % c_.run.log_every == 0 || last || eval_now) {
      log_progress(r, rate.mfu, rate.tokens_per_s, eval,
                   seconds_since(run_start) / double(r.step - start_step_) * double(c_.run.steps - r.step));
    }
    if (eval_now) note_evaluation(r.step, eval);  // run.keep_best: model_best.h5 when it is the best
    for (auto& hook : hooks_) hook(r);
    log_.check();  // a log that cannot be written ends the run (its last checkpoint stays)
    if (stop_requested_ && !last) {
      trace_step(-1, true);  // every rank stops after this step: the steps traced so far are written
      stop_with_checkpoint(r.step);
      return false;
    }
  }
  trace_step(-1, true);  // log.trace past the last step: written now (collective)
  finish_fit(seconds_since(run_start));
  return true;
}

void Trainer::stop_with_checkpoint(int64_t step) {
  settle_checkpoints(true);  // the stop is only safe once the checkpoint is complete
  if (saver_->last_complete() != step) {
    throw std::runtime_error(cat("stopped on request after step ", step,
                                 " but its checkpoint failed (the "
                                 "reason is above); the newest complete one is step ",
                                 saver_->last_complete()));
  }
  log_.warn(cat("stopped on request after step ", step, " of ", c_.run.steps, ": checkpoint in ", checkpoints_dir(),
                "; the same command resumes the run (--run.resume auto)"));
}

void Trainer::finish_fit(double seconds) {
  if (last_checkpoint_ != c_.run.steps) save_checkpoint(c_.run.steps);
  settle_checkpoints(true);  // exit waits for the last save
  save_weights(c_.run.dir + "/model.h5");
  report_held_out();  // the held-out trend: the best and the last evaluation, overfitting said
  log_.flush();
  log_.check();  // never report success with a log that lost lines
  log_.info(cat("reel train: done in ", fixed(seconds, 1), " s; metrics in ", c_.run.dir,
                "/metrics.jsonl, checkpoints in ", checkpoints_dir(), ", weights in ", c_.run.dir, "/model.h5",
                c_.run.keep_best && held_out_.best_step >= 0
                    ? cat(" (the best held-out: ", best_weights_path(), ", step ", held_out_.best_step, ")")
                    : std::string()));
  log_.flush();
  log_.check();
}

}  // namespace reel
