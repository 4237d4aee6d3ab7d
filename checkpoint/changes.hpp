// What a resumed run changes against the checkpoint it resumes (docs/checkpoint.md,
// "What a resumed run may change"): the resolved configuration compared key by key, and
// the data file's identity (clip count and content hash, docs/data.md).
//
// Pure functions of the saved and current values: every rank reaches the same verdict
// from the same checkpoint, before any rank loads a tensor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "reel/checkpoint/format.hpp"

namespace reel {

// How a changed key is treated on resume.
enum class ChangeClass {
  kRefused,     // model.*: the checkpoint's parameters fit only its own architecture
  kTrajectory,  // the run no longer follows the saved one (a warning)
  kInfo,        // bookkeeping, measurement or layout (resharding is a feature)
};

struct ConfigChange {
  std::string key;                   // "optim.lr"
  std::string old_value, new_value;  // "(absent)" where one side has no such key
  ChangeClass kind = ChangeClass::kInfo;
  std::string why;  // for a few keys: what the change does
  std::string text() const { return key + ": " + old_value + " -> " + new_value; }
};

// "section.key" -> value of a configuration written by config_ini() ([section] headers,
// "key = value" lines, # comments).
std::map<std::string, std::string> parse_config_ini(const std::string& text);

// Every key whose value differs between the saved and the current configuration, in key
// order, classified. data.path is left out: the data file's identity decides about it.
std::vector<ConfigChange> config_changes(const std::string& saved_ini, const std::string& current_ini);

// "" when no model.* key changed; otherwise why `checkpoint` cannot be resumed, naming
// every changed key with both values ("model.dim is 128 in the checkpoint, 64 in this configuration") and
// the ways forward, none of them destructive.
std::string model_change_refusal(const std::vector<ConfigChange>& changes, const std::string& checkpoint);

// The run's data file as reel saw it when it started: data.path, its clip count and the
// content hash of its clips.
struct DataIdentity {
  std::string path;
  int64_t clips = -1;
  std::string sha256;
};

// The verdict on resuming `checkpoint` (saved with `saved`'s data identity, and with
// data.path `saved_path`) on the data file `now`.
struct DataVerdict {
  std::string refusal;  // non-empty: resuming is refused, this is the whole message
  std::string warning;  // the change accepted by run.allow_data_change
  std::string info;     // a moved file, or a checkpoint that records no identity
};
DataVerdict check_data_identity(const TrainState& saved, const std::string& saved_path, const DataIdentity& now,
                                bool allow_change, const std::string& checkpoint);

}  // namespace reel
