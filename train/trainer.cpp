#include "reel/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "reel/data/weights.hpp"
#include "reel/dist/agreement.hpp"
#include "reel/dist/trace.hpp"
#include "reel/dist/watchdog.hpp"
#include "reel/model/flow.hpp"
#include "reel/optim/clip.hpp"
#include "reel/optim/weight_decay.hpp"
#include "reel/train/memory.hpp"
#include "reel/train/straggler.hpp"

namespace reel {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Checks the data file against the model and the batch before anything is built.
DataFileInfo check_data(const ModelSpec& spec, const TrainConfig& c) {
  const DataFileInfo info = spec.check_data(c.model, c.data.path);
  if (c.data.eval_clips + c.data.global_batch > info.samples) {
    throw std::invalid_argument(c.data.path + ": " + std::to_string(info.samples) + " samples cannot hold " +
                                std::to_string(c.data.eval_clips) + " held-out ones (data.eval_clips) and a batch of " +
                                std::to_string(c.data.global_batch) + " (data.global_batch)");
  }
  return info;
}

}  // namespace

Trainer::Trainer(const TrainConfig& config, const CommunicatorPtr& world)
    : c_(config),
      mesh_(ProcessMesh::create(world, c_.mesh, c_.parallel.sequence.ulysses_degree(c_.mesh.sp))),
      log_(c_.log, world->rank()),
      spec_(model_spec(c_.model.family)),
      data_(check_data(spec_, c_)),
      opt_(c_.adamw) {
  // data.micro_batch: the count follows this world's dp; the batch and the held-out clips
  // must split over it (DataConfig's rules, which reel plan asks too).
  c_.data.resolve_micro_batches(mesh_.dp());
  lock_run_dir();  // first: a second run into run.dir is refused before it builds anything
  if (!data_.checksums) {
    log_.warn(cat("data file ", c_.data.path,
                  " has no checksums (written before reel added them): damage to a clip "
                  "cannot be detected; rewrite it with reel data --overwrite or scripts/convert_videos.py"));
  }
  rss_start_ = resident_bytes();  // before the model: what the runtime and libraries hold
  // The model's structure only: FSDP gives each rank its shards and nothing more.
  model_ = spec_.build(c_.model, ParamInit{mesh_.world().device(), /*deferred=*/true, c_.run.seed});
  auto parallel = parallelize(*model_, mesh_, c_.parallel, c_.run.seed);
  sequence_ = std::move(parallel.sequence);
  fsdp_ = std::move(parallel.fsdp);
  const int shard_rank = mesh_.shard_group().rank();
  for (auto& u : fsdp_->units()) {
    opt_.add(u->shard(), u->layout()
                             .shard_mask(shard_rank, [](const ParamSlot& p) { return decays(p.name, p.shape); })
                             .to(u->shard().device()));
  }
  saver_ = std::make_unique<AsyncSaver>(checkpoints_dir(), c_.checkpoint.keep, mesh_.world(), log_);
  const DataPosition start = resume_or_start();
  try {
    const ModelSpec& spec = spec_;
    LoaderConfig lc{c_.data.path,
                    c_.data.micro_clips(),
                    mesh_.dp_rank(),
                    mesh_.dp(),
                    0,
                    data_.samples - c_.data.eval_clips,
                    c_.data.seed,
                    true,
                    c_.data.prefetch,
                    c_.data.global_batch,
                    [&spec](const std::string& path) { return spec.open_data(path); }};
    loader_ = std::make_unique<SampleLoader>(lc, start);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(e.what()) + " (data.global_batch " + std::to_string(c_.data.global_batch) +
                                " / data.micro_batches " + std::to_string(c_.data.micro_batches) +
                                " clips per micro-batch over dp=" + std::to_string(mesh_.dp()) + ")");
  }
  std::string error;
  if (mesh_.world_rank() == 0) {
    try {
      std::filesystem::create_directories(c_.run.dir);
      write_config_ini(c_, c_.run.dir + "/config.ini");
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree_or_throw(error, "preparing run.dir " + c_.run.dir);
  restore_best();                      // after resume_or_start: a resumed run carries on from its best evaluation
  Watchdog::set_dump_dir(c_.run.dir);  // a hang's dumps go beside the run's metrics
  if (!c_.log.trace.empty()) {
    trace_ = std::make_unique<trace::Session>(trace::parse_steps(c_.log.trace), mesh_.world(), c_.run.dir + "/trace");
  }
}

Trainer::~Trainer() = default;  // a save in flight is joined by the saver (no communication)

int64_t Trainer::parameter_count() {
  int64_t n = 0;
  for (const auto& u : fsdp_->units()) n += u->layout().numel;
  return n;
}

LossContext Trainer::loss_context(int64_t step) {
  return {sequence_->index(), step, c_.run.seed, mesh_.world().device(),
          [this](const std::function<at::Tensor()>& forward) { return fsdp_->forward(forward); }};
}

at::Tensor Trainer::micro_loss(const Batch& b, int64_t step) {
  const auto sum = spec_.loss_sum(c_.model, *model_, b, loss_context(step));
  return sum / double(spec_.targets_per_sample(c_.model) * c_.data.global_batch);
}

double Trainer::forward_backward(int64_t step, double* data_seconds) {
  fsdp_->zero_grad_shards();
  double data_s = 0;
  // [0]: the loss; [1], [2]: whether any rank was asked for a checkpoint, or to stop (the
  // same reduction tells every rank, so all save or stop after the same step).
  auto loss = at::zeros({3}, at::TensorOptions(at::kDouble).device(mesh_.world().device()));
  if (save_request_.exchange(false)) loss[1] = 1.0;
  if (stop_request_.exchange(false)) loss[2] = 1.0;
  for (int64_t m = 0; m < c_.data.micro_batches; ++m) {
    const auto wait = std::chrono::steady_clock::now();
    Batch batch;
    {
      trace::ScopedSpan data_span("train.data", "data");
      data_span.arg("micro", m);
      batch = loader_->next();
    }
    data_s += seconds_since(wait);
    fsdp_->set_micro_batch(m, c_.data.micro_batches);  // reduce each micro-batch, or only the last
    auto l = micro_loss(batch, step);
    trace::ScopedSpan backward_span("train.backward", "train");
    backward_span.arg("micro", m);
    l.backward();
    fsdp_->finish_backward();
    loss[0] += l.detach().to(at::kDouble).squeeze();
  }
  mesh_.world().all_reduce(loss);  // the global loss: per-rank sums over the global count
  if (data_seconds) *data_seconds = data_s;
  const auto host = loss.cpu();
  save_requested_ = host[1].item<double>() > 0;
  stop_requested_ = host[2].item<double>() > 0;
  return host[0].item<double>();
}

double Trainer::optimizer_step(int64_t step) {
  // The norm over one copy of the gradients: HSDP replicas hold identical shards.
  double norm = 0;
  {
    trace::ScopedSpan span("optim.clip", "optim");
    norm = clip_grad_norm(fsdp_->grad_shards(), c_.clip, &mesh_.shard_group());
  }
  // The norm is global: every rank skips, or none does.
  if (std::isfinite(norm)) opt_.step(fsdp_->grad_shards(), c_.schedule.lr_at(step));
  return norm;
}

// Fault injection for the desync test: REEL_FAULT_INJECT=extra_collective:RANK:STEP makes
// that rank issue one collective the others do not (on a group of one rank, so it
// completes instead of hanging).
void maybe_extra_collective(const ProcessMesh& mesh, int64_t step) {
  const char* spec = std::getenv("REEL_FAULT_INJECT");
  int rank = -1;
  long long at = -1;
  if (spec && std::sscanf(spec, "extra_collective:%d:%lld", &rank, &at) == 2 && rank == mesh.world_rank() &&
      at == step && mesh.replica_group().size() == 1) {
    mesh.replica_group().all_reduce(at::zeros({1}, at::TensorOptions().device(mesh.world().device())));
  }
}

// A trace that cannot be written (a full disk, too large to merge) is a warning, never the
// end of the run: every rank learns it together (trace::Session agrees on it) and drops it.
void Trainer::trace_step(int64_t step, bool finish) {
  if (!trace_) return;
  try {
    finish ? trace_->finish() : trace_->at_step(step);
  } catch (const std::exception& e) {
    log_.warn(cat("log.trace: ", e.what(), "; training goes on without the trace"));
    trace_.reset();
  }
}

StepResult Trainer::train_step(int64_t step) {
  trace_step(step + 1);  // collective when it starts or ends the traced steps
  maybe_extra_collective(mesh_, step);
  const auto start = std::chrono::steady_clock::now();
  test_slow_rank_sleep(mesh_.world_rank());  // test-only (REEL_TEST_SLOW_RANK): counted as compute
  StepResult r;
  r.step = step + 1;
  r.loss = forward_backward(step, &r.data_s);
  r.lr = c_.schedule.lr_at(step);
  r.grad_norm = std::isfinite(r.loss) ? optimizer_step(step) : std::nan("");  // the loss is global too
  r.skipped = !std::isfinite(r.loss) || !std::isfinite(r.grad_norm);
  r.comm_s = fsdp_->take_comm_seconds();
  r.step_s = seconds_since(start);
  return r;
}

void Trainer::save_weights(const std::string& path) {
  Watchdog::SlowPhase io;  // the others wait while rank 0 writes each unit
  // Rank 0 writes; a failure there is carried to every rank after the collectives, so
  // all ranks throw together instead of the others waiting in the next all-gather.
  std::unique_ptr<WeightsWriter> writer;
  std::string error;
  auto guarded = [&](const std::function<void()>& f) {
    if (!error.empty()) return;
    try {
      f();
    } catch (const std::exception& e) {
      error = e.what();
      writer.reset();
    }
  };
  if (mesh_.world_rank() == 0) guarded([&] { writer = std::make_unique<WeightsWriter>(path, c_.model); });
  fsdp_->for_each_full_parameter([&](const std::string& name, const at::Tensor& value) {
    if (writer) guarded([&] { writer->write(name, value); });
  });
  if (writer) guarded([&] { writer->close(); });
  agree_or_throw(error, "saving the weights to " + path);
}

void Trainer::handle_nonfinite(const StepResult& r) {
  if (!r.skipped) {
    skips_in_row_ = 0;
    return;
  }
  ++skips_in_row_;
  const std::string what = cat("step ", r.step, ": loss ", r.loss, ", gradient norm ", r.grad_norm);
  if (c_.run.nonfinite == NonFinite::kSkip && skips_in_row_ < c_.run.max_skips) {
    log_.warn(cat(what, ": update skipped (", skips_in_row_, " in a row; run.max_skips ", c_.run.max_skips, ")"));
    return;
  }
  // The parameters and moments are those after the last good step; the data position is
  // past the bad batch, so a resumed run does not meet it again at once.
  // (A checkpoint of step `good` saved earlier holds the earlier data position: resuming
  // from it meets the same batches again.)
  const int64_t good = r.step - skips_in_row_;
  if (good > 0 && last_checkpoint_ != good) save_checkpoint(good);
  settle_checkpoints(true);
  const bool saved = good > 0 && saver_->last_complete() == good;
  throw std::runtime_error(cat(what,
                               c_.run.nonfinite == NonFinite::kStop
                                   ? " (run.nonfinite stop)"
                                   : cat(": ", skips_in_row_, " non-finite steps in a row"),
                               saved ? cat(". the last good state, after step ", good, ", is in ", checkpoints_dir())
                                     : cat(". no good state to keep (step ", good, " has no complete checkpoint)"),
                               " (lower optim.lr, check the data, or raise run.max_skips)"));
}

void Trainer::check_desync(int64_t step) {
  // The fingerprint is taken before the comparison's own (symmetric) collectives.
  const std::string report = desync_report(mesh_.world(), Watchdog::fingerprint());
  if (report.empty()) return;
  throw std::runtime_error(cat("the ranks' collectives diverged by step ", step, " (dist.desync_every ",
                               c_.runtime.desync_every, "); ", report));
}

std::string Trainer::from_rank0(const std::string& text) { return reel::from_rank0(mesh_.world(), text); }

std::string Trainer::first_error(const std::string& error) { return reel::first_error(mesh_.world(), error); }

void Trainer::agree_or_throw(const std::string& error, const std::string& what) {
  throw_if_any_failed(mesh_.world(), error, what);
}

void Trainer::lock_run_dir() {
  Watchdog::SlowPhase wait;  // rank 0 may wait for a requeued job's previous start
  std::string error;
  if (mesh_.world_rank() == 0 && c_.run.lock) {
    try {
      run_lock_ = RunDirLock(c_.run.dir);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree_or_throw(error, "");
}

}  // namespace reel
