// The Trainer's checkpoints: snapshots for the saver, and resuming a run.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include "reel/checkpoint/changes.hpp"
#include "reel/checkpoint/reader.hpp"
#include "reel/data/video_file.hpp"
#include "reel/data/weights.hpp"
#include "reel/train/trainer.hpp"

#include "reel/dist/watchdog.hpp"

namespace reel {

namespace fs = std::filesystem;

namespace {

// Complete checkpoints under root, newest first; partial ones (a save that did not
// finish) are reported and left alone.
std::vector<std::string> complete_checkpoints(const std::string& root, const Logger& log) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(root)) return {};
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    const int64_t step = checkpoint_step(name);
    if (step >= 0 && fs::exists(e.path() / "manifest.json")) {
      found.emplace_back(step, e.path().string());
    } else if (step >= 0 || name.rfind(".tmp_", 0) == 0) {
      log.warn(cat("ignoring partial checkpoint ", e.path().string(), " (a save that did not finish)"));
    }
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> out;
  for (const auto& f : found) out.push_back(f.second);
  return out;
}

// The data identity each data.path had when a Trainer on it started (resume_or_start sets
// it on every rank, from rank 0's view), for the checkpoints it saves. Keyed by path: a
// Trainer always sets it before its first save, so a file rewritten between two Trainers
// of one process is hashed again.
std::mutex identity_mutex;
std::map<std::string, DataIdentity>& identities() {
  static std::map<std::string, DataIdentity> known;
  return known;
}

DataIdentity known_identity(const std::string& path) {
  std::lock_guard<std::mutex> lock(identity_mutex);
  const auto it = identities().find(path);
  return it == identities().end() ? DataIdentity{path, -1, ""} : it->second;
}

void remember_identity(const DataIdentity& identity) {
  std::lock_guard<std::mutex> lock(identity_mutex);
  identities()[identity.path] = identity;
}

// The content hash of the data file: its content_sha256 attribute, or (a file without one,
// written by an older reel or another tool) every clip read and hashed, which is said with
// the time it took. A failure (a damaged clip) is returned in `error`.
std::string data_sha256(const ModelSpec& spec, const std::string& path, int64_t samples, const Logger& log,
                        std::string& error) try {
  const auto start = std::chrono::steady_clock::now();
  bool computed = false;
  std::string sha = spec.content_sha256(path, &computed);
  if (!computed) return sha;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::error_code ec;
  const double mb = double(std::filesystem::file_size(path, ec)) / 1e6;
  log.info(cat(
      "data file ", path, " has no content hash (", kContentHashAttribute,
      ": written by an older reel or "
      "another tool): hashed its ",
      samples, spec.family() == "world" ? " clips (" : " samples (", fixed(ec ? 0.0 : mb, 1), " MB) in ", fixed(s, 3),
      " s for the checkpoints' data identity; rewriting it with reel data --overwrite or scripts/convert_videos.py "
      "stores the hash"));
  return sha;
} catch (const std::exception& e) {
  error = e.what();
  return "";
}

}  // namespace

std::vector<UnitShard> Trainer::unit_shards() {
  std::vector<UnitShard> out;
  const int rank = mesh_.shard_group().rank();
  for (size_t i = 0; i < fsdp_->units().size(); ++i) {
    auto& u = *fsdp_->units()[i];
    out.push_back({&u.layout(), rank, u.shard(), opt_.states()[i].exp_avg, opt_.states()[i].exp_avg_sq});
  }
  return out;
}

double Trainer::save_checkpoint(int64_t completed) {
  const auto waited = std::chrono::steady_clock::now();
  saver_->wait();  // at most one save in flight
  last_save_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - waited).count();
  const auto start = std::chrono::steady_clock::now();
  const DataIdentity data = known_identity(c_.data.path);
  TrainState state{completed,      opt_.steps(), loader_->position(), c_.run.seed, c_.data.seed,
                   config_ini(c_), c_.model,     mesh_.dp(),          mesh_.sp(),  mesh_.shard_group().size(),
                   data.clips,     data.sha256};
  // HSDP replicas hold identical shards: the first replica of each shard group saves them.
  const bool holds = mesh_.replica_group().rank() == 0;
  auto snapshot = take_snapshot(unit_shards(), state, mesh_.world_rank(), mesh_.world_size(), holds);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  saver_->save(std::move(snapshot), seconds);
  last_checkpoint_ = completed;
  return seconds;
}

void Trainer::settle_checkpoints(bool wait) {
  if (wait) {
    Watchdog::SlowPhase io;  // the ranks' writes end at different times: not a hang
    saver_->wait();
  } else {
    saver_->poll();
  }
}

namespace {

// Says what a resumed run changed against the checkpoint's configuration, one line per
// key: a warning where the run's trajectory changes, info otherwise (the model's keys
// were refused before anything was loaded).
void log_changes(const std::vector<ConfigChange>& changes, const Logger& log) {
  for (const auto& c : changes) {
    const std::string line = "changed since the checkpoint: " + c.text() + (c.why.empty() ? "" : " (" + c.why + ")");
    if (c.kind == ChangeClass::kTrajectory) {
      log.warn(line + (c.why.empty() ? " (the run no longer follows the saved one's trajectory)" : ""));
    } else {
      log.info(line);
    }
  }
}

// Why `state` cannot be resumed with this configuration and data file ("" when it can),
// and what to log if it is: model changes and a changed data file are refused here,
// before any rank loads a tensor.
std::string resume_refusal(const TrainState& state, const TrainConfig& c, const std::string& dir,
                           std::vector<ConfigChange>& changes, DataVerdict& data) {
  changes = config_changes(state.config_ini, config_ini(c));
  std::string refusal = model_change_refusal(changes, dir);
  if (!refusal.empty()) return refusal;
  try {  // what the configuration does not name: the stored architecture itself
    check_same_model(state.model, c.model, "checkpoint", dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  const auto saved = parse_config_ini(state.config_ini);
  const auto path = saved.find("data.path");
  data = check_data_identity(state, path == saved.end() ? "(not recorded)" : path->second, known_identity(c.data.path),
                             c.run.allow_data_change, dir);
  return data.refusal;
}

// The candidates of `auto`: what `latest` names first (the last committed save), then the
// other complete checkpoints, newest first.
std::vector<std::string> auto_candidates(const std::string& root, std::vector<std::string> complete) {
  std::ifstream in(root + "/latest");
  std::string name;
  if (in >> name) {
    const auto it = std::find(complete.begin(), complete.end(), root + "/" + name);
    if (it != complete.end()) std::rotate(complete.begin(), it, it + 1);
  }
  return complete;
}

}  // namespace

std::string Trainer::try_resume(const std::string& dir) {
  Watchdog::SlowPhase io;  // uneven shard loads
  std::string error;
  TrainState state;
  std::unique_ptr<CheckpointReader> reader;
  try {
    reader = std::make_unique<CheckpointReader>(dir);
    state = reader->state();
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::string reason = first_error(error);
  if (!reason.empty()) return reason;  // unreadable: auto tries an older one
  // A refusal is the same for every checkpoint of the run: no falling back, on any rank.
  std::vector<ConfigChange> changes;
  DataVerdict data;
  reason = first_error(resume_refusal(state, c_, dir, changes, data));
  if (!reason.empty()) throw std::invalid_argument(reason);
  try {
    load_shards(*reader, unit_shards());
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Every rank must agree: one rank's corrupt range makes the whole checkpoint unusable.
  reason = first_error(error);
  if (!reason.empty()) return reason;
  if (!data.info.empty()) log_.info(data.info);
  if (!data.warning.empty()) log_.warn(data.warning);
  log_changes(changes, log_);
  opt_.set_steps(state.optimizer_steps);
  start_step_ = last_checkpoint_ = state.step;
  resumed_position_ = state.data;
  const int64_t training_clips = data_.samples - c_.data.eval_clips;
  if (resumed_position_.cursor > training_clips) {  // other data (run.allow_data_change), fewer clips
    log_.warn(cat("the saved data position (epoch ", state.data.epoch, ", cursor ", state.data.cursor, ") is past the ",
                  training_clips, " training clips of ", c_.data.path, ": continuing at the start of the next epoch"));
    resumed_position_ = {state.data.epoch + 1, 0};
  }
  log_.info(cat("resumed from ", dir, " at step ", state.step, " (saved by ", reader->manifest().world_size,
                " rank(s) as dp=", state.dp, " x sp=", state.sp, ", shard groups of ", state.shard_group,
                "; data epoch ", state.data.epoch, ", cursor ", state.data.cursor, ")"));
  return "";
}

void Trainer::clear_run_dir(const std::string& why) {
  Watchdog::SlowPhase io;   // rank 0 removes files between the barriers
  mesh_.world().barrier();  // every rank has looked before rank 0 removes
  if (mesh_.world_rank() == 0) {
    fs::remove_all(checkpoints_dir());
    fs::remove(c_.run.dir + "/metrics.jsonl");
    log_.warn(why);
  }
  mesh_.world().barrier();
}

namespace {

// Why a run directory that holds a run is refused, and what to do instead. Never advises
// removing complete checkpoints: --run.overwrite is named only when there are none.
std::string refusal(const std::string& dir, size_t complete, const std::string& mode) {
  const std::string held =
      complete ? cat(complete, " complete checkpoint(s)") : std::string("an earlier attempt, no complete checkpoint");
  return cat("run.dir ", dir, " holds a run (", held, ") and run.resume is ", mode, ": ",
             complete ? std::string("resume it with --run.resume auto, or choose another run.dir")
                      : std::string("--run.resume auto starts it afresh, --run.overwrite true starts this run there, "
                                    "or choose another run.dir"));
}

}  // namespace

namespace {

// What rank 0 sees in run.dir, one line each: the flags "holds finished", then the
// complete checkpoints, newest first.
struct RunDirView {
  bool holds_run = false;             // metrics, checkpoints (complete or partial)
  bool finished = false;              // model.h5: the run wrote its final weights
  std::vector<std::string> complete;  // in the order auto tries them (auto_candidates)

  std::string text() const {
    std::string t = std::string(holds_run ? "1" : "0") + (finished ? "1" : "0") + "\n";
    for (const auto& c : complete) t += c + "\n";
    return t;
  }
  static RunDirView parse(const std::string& text) {
    RunDirView v;
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    v.holds_run = line.size() == 2 && line[0] == '1';
    v.finished = line.size() == 2 && line[1] == '1';
    while (std::getline(in, line)) v.complete.push_back(line);
    return v;
  }
};

}  // namespace

// The data file's identity as rank 0 reads it, for the checks of try_resume and for the
// checkpoints this run saves. A file without a stored hash is read whole by rank 0 while
// the others wait: an uneven phase, not a hang (a large file takes minutes).
void Trainer::remember_data_identity() {
  Watchdog::SlowPhase io;
  std::string error;
  const std::string sha = mesh_.world_rank() == 0 ? data_sha256(spec_, c_.data.path, data_.samples, log_, error) : "";
  agree_or_throw(error, "hashing data.path " + c_.data.path);
  remember_identity({c_.data.path, data_.samples, from_rank0(sha)});
}

DataPosition Trainer::resume_or_start() {
  const std::string& mode = c_.run.resume;
  // Rank 0 looks, every rank follows: ranks on other nodes may see a shared filesystem a
  // moment later, and must not take another path through the collectives below.
  std::string seen;
  if (mesh_.world_rank() == 0) {
    RunDirView v;
    v.complete = auto_candidates(checkpoints_dir(), complete_checkpoints(checkpoints_dir(), log_));
    v.finished = fs::exists(c_.run.dir + "/model.h5");
    v.holds_run = !v.complete.empty() || fs::exists(c_.run.dir + "/metrics.jsonl") ||
                  (fs::is_directory(checkpoints_dir()) && !fs::is_empty(checkpoints_dir()));
    seen = v.text();
  }
  const RunDirView view = RunDirView::parse(from_rank0(seen));
  const auto& complete = view.complete;
  remember_data_identity();
  if (mode == "auto" && complete.empty()) {
    // A finished run whose checkpoints are gone has nothing to resume: never retrain it silently.
    if (view.finished && !c_.run.overwrite) {
      throw std::invalid_argument(cat("run.dir ", c_.run.dir,
                                      " holds a finished run (model.h5) and no complete "
                                      "checkpoint to continue from: choose another run.dir, or --run.overwrite true "
                                      "to train there afresh (its model.h5 is then replaced)"));
    }
    // A crash before the first checkpoint: nothing to resume but a run to start again.
    if (view.holds_run) {
      clear_run_dir(cat("run.dir ", c_.run.dir,
                        " holds no complete checkpoint (an earlier attempt ended before its "
                        "first save): starting the run afresh (its metrics.jsonl and partial checkpoints removed)"));
    }
    return {};
  }
  // A checkpoint of another run may seed this one only in an empty run directory.
  const bool own = mode != "auto" && mode != "never" &&
                   fs::weakly_canonical(fs::path(mode)).parent_path() == fs::weakly_canonical(checkpoints_dir());
  if (mode == "never" || (mode != "auto" && !own)) {
    if (view.holds_run && !c_.run.overwrite) throw std::invalid_argument(refusal(c_.run.dir, complete.size(), mode));
    if (view.holds_run)
      clear_run_dir(cat("run.overwrite: removed the checkpoints and metrics of the run in ", c_.run.dir));
    if (mode == "never") return {};
  }
  if (mode != "auto") {
    const std::string reason = try_resume(mode);
    if (!reason.empty()) throw std::runtime_error("cannot resume from checkpoint " + mode + ": " + reason);
    return resumed_position_;
  }
  std::string newest;
  for (const auto& dir : complete) {
    const std::string reason = try_resume(dir);
    if (reason.empty()) return resumed_position_;
    log_.warn(cat("checkpoint ", dir, " cannot be loaded: ", reason, "; trying the next newest complete one"));
    if (newest.empty()) newest = reason;
  }
  // The reason comes last: it is what the user must act on.
  throw std::runtime_error(cat("none of the ", complete.size(), " complete checkpoint(s) in ", checkpoints_dir(),
                               " loads, and nothing was removed (if the configuration changed, resume with the one "
                               "the run was saved with, ",
                               c_.run.dir,
                               "/config.ini, or train the new one in another "
                               "run.dir; reel ckpt verify checks a checkpoint's files); the newest: ",
                               newest));
}

}  // namespace reel
