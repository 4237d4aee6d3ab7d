#include "reel/checkpoint/saver.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "reel/dist/agreement.hpp"
#include "reel/dist/trace.hpp"

namespace reel {

namespace fs = std::filesystem;

std::string checkpoint_tmp_dir(const std::string& root, int64_t step) {
  return root + "/.tmp_" + checkpoint_name(step);
}

namespace {

// Fault injection for the tests of what a crash in the middle of a save leaves behind:
// REEL_FAULT_INJECT=kill_in_save:RANK:STEP makes that rank's writer SIGKILL its own
// process after writing its rank file for that step, before confirming it.
void maybe_die_in_save(int rank, int64_t step) {
  const char* spec = std::getenv("REEL_FAULT_INJECT");
  if (!spec) return;
  int r = -1;
  long long s = -1;
  if (std::sscanf(spec, "kill_in_save:%d:%lld", &r, &s) == 2 && r == rank && s == step) std::raise(SIGKILL);
}

}  // namespace

AsyncSaver::AsyncSaver(std::string root, int keep, Communicator& comm, const Logger& log)
    : root_(std::move(root)), keep_(keep), comm_(comm), log_(log) {}

AsyncSaver::~AsyncSaver() {
  if (writer_.valid()) writer_.wait();
}

void AsyncSaver::save(RankSnapshot snapshot, double snapshot_seconds) {
  if (trace::on()) {  // the snapshot just taken, by the caller: its span ends now
    const int64_t now = trace::now_ns();
    trace::record("checkpoint.snapshot", "checkpoint", now - static_cast<int64_t>(snapshot_seconds * 1e9), now,
                  "\"checkpoint_step\":" + std::to_string(snapshot.state.step));
  }
  trace::ScopedSpan span("checkpoint.save", "checkpoint");
  wait();
  step_ = snapshot.state.step;
  snapshot_s_ = snapshot_seconds;
  const std::string tmp = checkpoint_tmp_dir(root_, step_);
  // A partial directory of the same step (a crash earlier) must not leak into this one.
  if (comm_.rank() == 0) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  }
  comm_.barrier();  // cleared before any writer starts
  // The writer: this rank's file, then its record beside it for rank 0's manifest.
  writer_ = std::async(std::launch::async, [tmp, s = std::move(snapshot)] {
    // Background work: on a machine whose cores the ranks fill, the writer runs only in
    // the time they leave idle (SCHED_IDLE), instead of taking a share of the step.
    if (trace::on()) trace::name_thread("checkpoint writer");
    trace::ScopedSpan span("checkpoint.write", "checkpoint");
    sched_param idle{};
    if (sched_setscheduler(static_cast<pid_t>(syscall(SYS_gettid)), SCHED_IDLE, &idle) != 0) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
    }
    WriteResult result;
    try {
      const auto start = std::chrono::steady_clock::now();
      fs::create_directories(tmp);
      const FileRecord record = write_rank_file(tmp, s);
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      result.bytes = record.bytes;
      maybe_die_in_save(s.rank, s.state.step);
      write_file_atomically(tmp + "/rank" + std::to_string(s.rank) + ".json", to_json(record).dump());
    } catch (const std::exception& e) {
      result.error = e.what();
    }
    return result;
  });
}

void AsyncSaver::poll() {
  if (writer_.valid()) finish(false);
}

void AsyncSaver::wait() {
  if (!writer_.valid()) return;
  writer_.wait();
  finish(true);
}

int AsyncSaver::agree(bool failed_here) { return lowest_rank(comm_, failed_here); }

// Every rank says whether its writer is done and whether it failed (dist/agreement.hpp):
// the decision to finish, and its outcome, are the same everywhere.
void AsyncSaver::finish(bool all_done) {
  const bool done = all_done || writer_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  if (any_rank(comm_, !done)) return;  // some rank is still writing
  const WriteResult result = writer_.get();
  write_s_ = result.seconds;
  bytes_ = result.bytes;
  finished_ = true;
  const std::string tmp = checkpoint_tmp_dir(root_, step_);
  std::string error = result.error;
  int failed_rank = agree(!error.empty());
  if (failed_rank < 0) {
    // Every writer succeeded: rank 0 commits, and everyone learns whether that worked.
    if (comm_.rank() == 0) {
      try {
        commit(tmp, step_);
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    failed_rank = agree(!error.empty());
    if (failed_rank < 0) {
      last_complete_ = step_;
      if (comm_.rank() == 0) retain(step_);
      return;
    }
  }
  ++failures_;
  // Every rank reports it (errors print on every rank); the failing one with its reason.
  log_.error(cat("checkpoint at step ", step_, " failed on rank ", failed_rank, error.empty() ? "" : ": " + error,
                 "; no checkpoint written, training goes on with its state"));
  comm_.barrier();  // every rank is done with the directory before it goes
  if (comm_.rank() == 0) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  }
}

void AsyncSaver::commit(const std::string& tmp, int64_t step) {
  trace::ScopedSpan span("checkpoint.commit", "checkpoint");
  span.arg("checkpoint_step", step);
  Manifest m;
  m.reel_version = reel_version();
  m.world_size = comm_.size();
  for (int r = 0; r < comm_.size(); ++r) {
    const std::string path = tmp + "/rank" + std::to_string(r) + ".json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("missing " + path);
    m.files.push_back(file_from_json(nlohmann::json::parse(in)));
  }
  m.state = read_rank_state(tmp + "/" + m.files[0].name);
  write_file_atomically(tmp + "/manifest.json", to_json(m).dump(1));
  for (int r = 0; r < comm_.size(); ++r) fs::remove(tmp + "/rank" + std::to_string(r) + ".json");
  const std::string final_dir = root_ + "/" + checkpoint_name(step), aside = final_dir + ".replaced";
  // An older save of the same step (a run resumed from before it): moved aside, not
  // deleted, until the new one has its name.
  if (fs::exists(final_dir)) fs::rename(final_dir, aside);
  fs::rename(tmp, final_dir);
  sync_directory(root_);
  fs::remove_all(aside);
  write_file_atomically(root_ + "/latest", checkpoint_name(step) + "\n");
  log_.info(cat("checkpoint at step ", step, " complete: ", final_dir, " (rank 0 wrote ", bytes_, " bytes in ",
                fixed(write_s_, 3), " s)"));
}

// Keeps the newest `keep` complete checkpoints, never the one just committed, and clears
// partial directories of earlier crashes. Failures here are warnings: the save is done.
void AsyncSaver::retain(int64_t committed) {
  try {
    std::vector<int64_t> steps;
    for (const auto& e : fs::directory_iterator(root_)) {
      const std::string name = e.path().filename().string();
      const int64_t s = checkpoint_step(name);
      if (s >= 0 && s != committed && fs::exists(e.path() / "manifest.json")) steps.push_back(s);
      if (name.rfind(".tmp_", 0) == 0 || (name.size() > 9 && name.substr(name.size() - 9) == ".replaced")) {
        fs::remove_all(e.path());
      }
    }
    std::sort(steps.begin(), steps.end());
    const size_t others = keep_ > 0 ? static_cast<size_t>(keep_ - 1) : steps.size();
    for (size_t i = 0; i + others < steps.size(); ++i) fs::remove_all(root_ + "/" + checkpoint_name(steps[i]));
  } catch (const std::exception& e) {
    log_.warn(cat("checkpoint retention in ", root_, ": ", e.what()));
  }
}

}  // namespace reel
