#include "reel/checkpoint/changes.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "reel/optim/schedule.hpp"

namespace reel {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Keys that never change what the run computes: where it writes and logs, what it
// measures, how it checkpoints, how the work is laid out over the ranks (resharding and
// gradient accumulation reorder floating-point sums, nothing more), how it guards itself.
bool is_info_key(const std::string& key) {
  static const std::set<std::string> keys = {"data.prefetch",     "data.micro_batches",
                                             "data.micro_batch",  "run.dir",
                                             "run.log_every",     "run.eval_every",
                                             "run.peak_flops",    "run.resume",
                                             "run.overwrite",     "run.allow_data_change",
                                             "run.lock",          "run.nonfinite",
                                             "run.max_skips",     "run.plot",
                                             "run.rollout_steps", "run.rollout_context_t",
                                             "run.keep_best"};
  if (keys.count(key)) return true;
  // parallel.* is the layout, except the dtypes, which change every step's numerics.
  if (starts_with(key, "parallel.")) return key != "parallel.param_dtype" && key != "parallel.reduce_dtype";
  return starts_with(key, "checkpoint.") || starts_with(key, "log.") || starts_with(key, "dist.");
}

// The class of a changed key. Anything not known to be harmless is a trajectory change
// (a warning), so an option added later is never silently waved through.
ChangeClass classify(const std::string& key, const std::map<std::string, std::string>& now, std::string& why) {
  if (starts_with(key, "model.")) return ChangeClass::kRefused;
  if (key == "run.steps") {
    // The schedule's length is run.steps: a cosine decay stretches or shrinks with it.
    const auto decay = now.find("optim.decay");
    if (decay != now.end() && decay->second == enum_name(LrDecay::kConstant)) {
      why = "the run's length only: the constant learning rate is unchanged";
      return ChangeClass::kInfo;
    }
    why = "the learning-rate schedule spans the new length: every later step's rate changes";
    return ChangeClass::kTrajectory;
  }
  return is_info_key(key) ? ChangeClass::kInfo : ChangeClass::kTrajectory;
}

}  // namespace

std::map<std::string, std::string> parse_config_ini(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[section + "." + trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

std::vector<ConfigChange> config_changes(const std::string& saved_ini, const std::string& current_ini) {
  const auto was = parse_config_ini(saved_ini), now = parse_config_ini(current_ini);
  std::set<std::string> keys;
  for (const auto& kv : was) keys.insert(kv.first);
  for (const auto& kv : now) keys.insert(kv.first);
  std::vector<ConfigChange> out;
  for (const auto& key : keys) {
    if (key == "data.path") continue;  // the data file's identity decides (check_data_identity)
    const auto a = was.find(key), b = now.find(key);
    const std::string old_value = a == was.end() ? "(absent)" : a->second;
    const std::string new_value = b == now.end() ? "(absent)" : b->second;
    if (old_value == new_value) continue;
    ConfigChange c{key, old_value, new_value, ChangeClass::kInfo, ""};
    c.kind = classify(key, now, c.why);
    // A model key one side does not record (a configuration older than the option) is
    // left to the model check of the stored architecture (check_same_model).
    if (c.kind == ChangeClass::kRefused && (a == was.end() || b == now.end())) c.kind = ChangeClass::kInfo;
    out.push_back(c);
  }
  return out;
}

std::string model_change_refusal(const std::vector<ConfigChange>& changes, const std::string& checkpoint) {
  std::string fields;
  for (const auto& c : changes) {
    if (c.kind != ChangeClass::kRefused) continue;
    fields += (fields.empty() ? "" : "; ") + c.key + " is " + c.old_value + " in the checkpoint, " + c.new_value +
              " in this configuration";
  }
  if (fields.empty()) return "";
  // The changed keys come last: they are what the user acts on.
  return "cannot resume from checkpoint " + checkpoint +
         ": the model options differ from those it was saved with, and its parameters fit only its own "
         "architecture; train this model in another run.dir, or resume with the saved model options (config_ini in " +
         checkpoint + "/manifest.json): " + fields;
}

DataVerdict check_data_identity(const TrainState& saved, const std::string& saved_path, const DataIdentity& now,
                                bool allow_change, const std::string& checkpoint) {
  DataVerdict v;
  if (saved.data_clips < 0 || saved.data_sha256.empty()) {
    v.info = "checkpoint " + checkpoint + " records no data identity (saved by an older reel): data.path " + now.path +
             " is not checked against the file it was trained on (" + saved_path + ")";
    return v;
  }
  auto describe = [](int64_t clips, const std::string& sha) {
    return std::to_string(clips) + " clips, content sha256 " + sha;
  };
  if (saved.data_clips == now.clips && saved.data_sha256 == now.sha256) {
    if (saved_path != now.path) {
      v.info =
          "data file moved: " + saved_path + " -> " + now.path + " (the same " + describe(now.clips, now.sha256) + ")";
    }
    return v;
  }
  const std::string change = "checkpoint " + checkpoint + " was trained on " + saved_path + " (" +
                             describe(saved.data_clips, saved.data_sha256) + "), but data.path " + now.path +
                             " holds " + describe(now.clips, now.sha256);
  if (!allow_change) {
    v.refusal = "cannot resume: " + change + "; resume with the original file (--data.path " + saved_path +
                "), or accept the change with --run.allow_data_change true";
  } else {
    v.warning = "run.allow_data_change: resuming on other data: " + change +
                " (the sample order continues from the saved position over the new clips)";
  }
  return v;
}

}  // namespace reel
