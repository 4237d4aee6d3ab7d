// Evaluation on the held-out samples: the family's loss, the world model's metrics of rollouts,
// the best evaluation's weights (run.keep_best) and the held-out trend of the run.
#include <ATen/ATen.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "reel/data/hdf5.hpp"
#include "reel/data/video_file.hpp"
#include "reel/dist/watchdog.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/rollout.hpp"
#include "reel/model/world_model.hpp"
#include "reel/train/trainer.hpp"

namespace reel {

namespace {

// This dp rank's share of the held-out clips (the file's last `total`), split as evenly
// as dp allows (each sp rank its tokens of them): the world's sums then cover every
// held-out clip once at every layout.
std::vector<int64_t> held_out_share(int64_t clips, int64_t total, int64_t dp, int64_t d) {
  const int64_t first = total * d / dp, count = total * (d + 1) / dp - first;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < count; ++i) ids.push_back(clips - total + first + i);
  return ids;
}

}  // namespace

double Trainer::evaluate() {
  at::NoGradGuard no_grad;
  const int64_t total = c_.data.eval_clips;
  if (total == 0) return std::nan("");
  const auto ids = held_out_share(data_.samples, total, mesh_.dp(), mesh_.dp_rank());
  auto sum = at::zeros({1}, at::TensorOptions(at::kDouble).device(mesh_.world().device()));
  if (!ids.empty()) {
    const Batch batch{spec_.open_data(c_.data.path)->read_samples(ids), ids, {}};
    sum += spec_.loss_sum(c_.model, *model_, batch, loss_context(-1)).to(at::kDouble);  // step -1: fixed noise
  }
  mesh_.world().all_reduce(sum);
  return sum.item<double>() / double(spec_.targets_per_sample(c_.model) * total);
}

bool Trainer::measures_rollouts() const {
  // The data's action dims equal the model's (checked at start).
  return c_.model.family == "world" && c_.run.rollout_steps > 0 && c_.data.eval_clips > 0 &&
         c_.model.attention == AttentionKind::kCausal && c_.model.action_dim == 2;
}

RolloutMetrics Trainer::evaluate_rollouts() {
  at::NoGradGuard no_grad;
  const auto& m = c_.model;
  const int64_t c = m.context_groups * m.patch_t;
  RolloutMetrics metrics(m.groups() - m.context_groups, m.frames - c);
  // Every dp rank has clips (eval_clips >= dp is checked at start): one batch each, so
  // every rank runs the same forwards and FSDP's gathers pair up.
  const auto ids = held_out_share(data_.samples, c_.data.eval_clips, mesh_.dp(), mesh_.dp_rank());
  auto& world = dynamic_cast<WorldModelImpl&>(*model_);  // measures_rollouts(): the world model
  const auto dev = mesh_.world().device();
  auto batch = VideoReader(c_.data.path).read(ids);
  auto video = frames_to_float(batch.frames);  // [B, T, C, H, W]
  const auto& index = sequence_->index();      // this rank's token positions [Lc]
  const auto index_dev = index.to(dev);
  auto mine = patchify(video, m).index_select(1, index).to(dev);  // [B, Lc, P]
  RolloutSpec spec;
  spec.from_group = m.context_groups, spec.groups = m.groups() - m.context_groups;
  spec.steps = c_.run.rollout_steps, spec.seed = c_.run.seed, spec.context_t = c_.run.rollout_context_t;
  auto roll = [&](const at::Tensor& actions) {
    const auto acts = actions.to(dev);
    auto velocity = [&](const at::Tensor& x, const at::Tensor& t) {
      return fsdp_->forward([&] { return world.forward(x, t, acts, index_dev); });
    };
    auto local = rollout_tokens(velocity, mine, index, ids, m, spec);
    // The whole clips on every rank of the sp group: each position is held by one rank.
    auto full = at::zeros({int64_t(ids.size()), m.tokens(), m.patch_dim()}, local.options());
    full.index_copy_(1, index_dev, local);
    if (mesh_.sp() > 1) mesh_.sp_group().all_reduce(full);
    return unpatchify(full.cpu().to(at::kFloat), m).clamp(-1, 1);
  };
  auto predicted = roll(batch.actions);
  auto reversed = roll(reversed_actions(batch.actions, c - 1));
  if (mesh_.sp_rank() == 0) metrics.add(video, predicted, reversed, batch.actions, c);  // once per dp rank
  auto sums = metrics.pack().to(dev);
  mesh_.world().all_reduce(sums);
  metrics.unpack(sums);
  return metrics;
}

bool HeldOutTrend::improves(int64_t step, double loss) const {
  return std::isfinite(loss) && (best_step < 0 || loss < best_loss || step == best_step);
}

void HeldOutTrend::note(int64_t step, double loss, double train) {
  if (improves(step, loss)) best_step = step, best_loss = loss, best_train = train;
  last_step = step, last_loss = loss, last_train = train;
}

bool HeldOutTrend::overfits() const {
  return best_step >= 0 && last_step > best_step && last_loss > best_loss && last_train < best_train;  // NaN: false
}

std::string held_out_report(const HeldOutTrend& t, int64_t train_clips, int64_t global_batch, bool keeps_best) {
  if (t.best_step < 0) return "";
  const std::string best = cat("held-out loss: best ", fixed(t.best_loss, 4), " at step ", t.best_step);
  const std::string kept = keeps_best ? cat("; model_best.h5 holds step ", t.best_step, "'s weights") : "";
  if (t.last_step < 0) return cat(best, " (no evaluation since the resume)", kept);
  if (t.last_step == t.best_step) return cat(best, ", the last evaluation", kept);
  const std::string last = cat("; last ", fixed(t.last_loss, 4), " at step ", t.last_step);
  if (!(t.last_loss > t.best_loss)) return cat(best, last, " (as low)", kept);
  const std::string trains = cat(fixed(t.best_train, 4), " -> ", fixed(t.last_train, 4));
  std::string why;
  if (t.overfits()) {
    const double epochs = double(t.last_step) * double(global_batch) / double(std::max<int64_t>(train_clips, 1));
    why = cat(": rising while the training loss falls, ", trains, ": the model is overfitting its ", train_clips,
              " training clips, ", fixed(epochs, epochs < 10 ? 1 : 0), " epochs");
  } else if (std::isfinite(t.best_train) && std::isfinite(t.last_train)) {
    why = cat("; the training loss did not fall either, ", trains, ": not a sign of overfitting");
  }
  const std::string rise = t.best_loss > 0 ? cat("+", fixed(100 * (t.last_loss - t.best_loss) / t.best_loss, 1), "%")
                                           : std::string("higher");
  return cat(best, last, " (", rise, " since the best", why, ")",
             keeps_best ? kept
                        : cat("; model.h5 holds step ", t.last_step,
                              "'s weights (run.keep_best true keeps the best "
                              "held-out weights in model_best.h5)"));
}

namespace {

// A best evaluation as text that reads back bit for bit: "step loss train".
std::string encode_best(int64_t step, double loss, double train) {
  char text[96];
  std::snprintf(text, sizeof text, "%" PRId64 " %.17g %.17g", step, loss, train);
  return text;
}

// The best eval_loss of a metrics.jsonl up to step `through` (a resumed run drops the
// lines after it), with the mean training loss of the steps since the previous
// evaluation; "" when there is none. Lines that are not whole JSON are skipped.
std::string best_in_metrics(const std::string& path, int64_t through) {
  std::ifstream in(path);
  std::string line;
  HeldOutTrend t;
  double sum = 0;
  int64_t n = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) continue;
    const int64_t step = j["step"].get<int64_t>();
    if (step > through) continue;
    if (j.contains("loss") && j["loss"].is_number()) sum += j["loss"].get<double>(), ++n;  // null: a skipped step
    if (j.contains("eval_loss") && j["eval_loss"].is_number()) {
      t.note(step, j["eval_loss"].get<double>(), n > 0 ? sum / double(n) : std::nan(""));
      sum = 0, n = 0;
    }
  }
  return t.best_step < 0 ? "" : encode_best(t.best_step, t.best_loss, t.best_train);
}

// The best evaluation model_best.h5 records (its attributes); "" with the reason in
// *problem when the file does not say.
std::string best_in_weights(const std::string& path, std::string* problem) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    *problem = "not an HDF5 file (a damaged write?)";
    return "";
  }
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  int64_t step = -1;
  double loss = 0, train = std::nan("");
  if (!file.valid() || !read_attribute(file.get(), "step", step) || !read_attribute(file.get(), "eval_loss", loss)) {
    *problem = "no step and eval_loss attributes";
    return "";
  }
  read_attribute(file.get(), "train_loss", train);
  return encode_best(step, loss, train);
}

// Adds the attributes of the best evaluation to a weights file; throws naming the file.
void mark_best(const std::string& path, int64_t step, double eval, double train) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  const bool ok = file.valid() && write_attribute(file.get(), "step", step) &&
                  write_attribute(file.get(), "eval_loss", eval) && write_attribute(file.get(), "train_loss", train) &&
                  H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0;
  if (!ok) throw std::runtime_error("cannot write the step and eval_loss attributes to " + path + " (disk full?)");
}

}  // namespace

void Trainer::restore_best() {
  namespace fs = std::filesystem;
  Watchdog::SlowPhase io;  // rank 0 reads model_best.h5 or a long metrics.jsonl while the others wait
  const std::string path = best_weights_path();
  const bool evaluates = c_.run.eval_every > 0 && c_.data.eval_clips > 0;
  if (c_.run.keep_best && !evaluates) {
    log_.info("run.keep_best: no held-out evaluation (run.eval_every or data.eval_clips is 0), so no model_best.h5");
  }
  std::string text;
  if (mesh_.world_rank() == 0) {
    std::error_code ignored;
    if (start_step_ == 0) {  // a fresh start: an earlier attempt's best is not this run's
      if (fs::exists(path)) log_.info(cat("removed ", path, " of an earlier attempt (this run starts afresh)"));
      for (const char* end : {"", ".part", ".part.tmp"}) fs::remove(path + end, ignored);
    } else if (c_.run.keep_best && evaluates) {
      std::string problem = "none written before the resumed step";
      if (fs::exists(path)) text = best_in_weights(path, &problem);
      // Written by an evaluation past the resumed checkpoint (a continuation that crashed
      // before its next save): weights no checkpoint reproduces, and a loss of that other
      // trajectory. Dropped.
      if (!text.empty() && std::strtoll(text.c_str(), nullptr, 10) > start_step_) {
        problem = cat("it holds step ", std::strtoll(text.c_str(), nullptr, 10), ", past the resumed step ",
                      start_step_, " (a continuation that ended before its next checkpoint): removed");
        fs::remove(path, ignored);
        text.clear();
      }
      if (text.empty()) {
        log_.warn(cat(path, ": ", problem, "; the best held-out weights are kept from the next evaluation"));
      }
    } else {
      text = best_in_metrics(c_.run.dir + "/metrics.jsonl", start_step_);
      if (fs::exists(path)) {
        log_.warn(cat(path, " is no longer kept up to date (this resume has run.keep_best false or no evaluation)"));
      }
    }
  }
  text = from_rank0(text);  // every rank takes the same decisions in note_evaluation
  if (text.empty()) return;
  char* end = nullptr;
  held_out_.best_step = std::strtoll(text.c_str(), &end, 10);
  held_out_.best_loss = std::strtod(end, &end);
  held_out_.best_train = std::strtod(end, &end);
  log_.info(cat("held-out loss: the best before the resume is ", fixed(held_out_.best_loss, 4), " at step ",
                held_out_.best_step, c_.run.keep_best ? " (model_best.h5)" : " (metrics.jsonl)"));
}

void Trainer::save_best(int64_t step, double eval, double train) {
  const std::string path = best_weights_path(), part = path + ".part";
  save_weights(part);  // collective; its writer fills part.tmp and renames it to part
  std::string error;
  if (mesh_.world_rank() == 0) {
    try {
      mark_best(part, step, eval, train);
      std::filesystem::rename(part, path);  // atomic: a reader sees the old file or the new one
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  agree_or_throw(error, "keeping the best held-out weights in " + path);
}

void Trainer::note_evaluation(int64_t step, double eval) {
  const double train = train_loss_steps_ > 0 ? train_loss_sum_ / double(train_loss_steps_) : std::nan("");
  train_loss_sum_ = 0, train_loss_steps_ = 0;
  const bool best = held_out_.improves(step, eval);  // the same on every rank: eval is all-reduced
  held_out_.note(step, eval, train);
  if (best && c_.run.keep_best) save_best(step, eval, train);
}

void Trainer::report_held_out() {
  const std::string text =
      held_out_report(held_out_, data_.samples - c_.data.eval_clips, c_.data.global_batch, c_.run.keep_best);
  if (text.empty()) return;
  if (held_out_.overfits()) {
    log_.warn(text);
  } else {
    log_.info(text);
  }
}

}  // namespace reel
