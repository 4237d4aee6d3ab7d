// Cross-rank agreement: the small collective decisions every rank of a group must take
// alike ("did any rank fail?", "which rank failed first, and why?", "what did rank 0 see?",
// "do the ranks still issue the same collectives?"), and how the job as a whole ends.
//
// A rank that takes another path through the collectives than the others hangs the job at
// the next collective they do not share. So wherever one rank's local outcome (an I/O
// error, a file it read) decides what happens next, the ranks first agree on it with one
// of these functions and then all take the same branch: all throw, or none does.
//
// Contract common to the collective functions (the first part of this header):
// - Collective over `comm`: every rank of comm calls the same function, in the same order
//   relative to comm's other calls (communicator.hpp), with the same arguments where a
//   function says so. Ranks are comm's ranks (0 .. comm.size() - 1).
// - Every rank returns the same value (or throws the same exception type), except where a
//   function says otherwise (first_error adds " (rank R)" on the ranks that are not R).
// - Costs are stated per function: small tensors on comm.device(), moved to the host for
//   the decision (on NCCL, a device-to-host copy each).
// - They throw what the underlying collective throws (DistError, std::invalid_argument).
#pragma once

#include <string>

#include "reel/dist/communicator.hpp"
#include "reel/dist/watchdog.hpp"

namespace reel {

// True on every rank when `flag` is true on any rank of comm (logical OR).
// Cost: one all-reduce (max) of one 8-byte element.
bool any_rank(Communicator& comm, bool flag);

// The lowest rank of comm whose `flag` is true, the same on every rank; -1 when no rank's is.
// Cost: one all-reduce (max) of one 8-byte element.
int lowest_rank(Communicator& comm, bool flag);

// `root`'s `text` on every rank of comm (the other ranks' `text` is not read); any bytes,
// any length. root: the same on every rank, in [0, comm.size()).
// Cost: a broadcast of the length (8 bytes), then, when it is not 0, one of the text.
std::string broadcast_text(Communicator& comm, const std::string& text, int root);

// Rank 0's `text` on every rank: decisions that read a shared filesystem are made once, by
// rank 0, so that no rank takes another path through the collectives.
// Cost: as broadcast_text.
std::string from_rank0(Communicator& comm, const std::string& text);

// The `error` of the lowest rank whose `error` is not empty, whole, followed by " (rank R)"
// on every rank other than that rank R; "" on every rank when no rank has one.
// Cost: one all-reduce of one 8-byte element when no rank has an error (the common case);
// otherwise also broadcast_text of the error from rank R.
std::string first_error(Communicator& comm, const std::string& error);

// Throws std::runtime_error on every rank when `error` is set on any, with first_error's
// reason: "`what` failed: reason" (just the reason when `what` is empty). Returns on every
// rank when no rank has an error. Cost: as first_error.
void throw_if_any_failed(Communicator& comm, const std::string& error, const std::string& what);

// Desync detection: compares every rank's collective fingerprint (`mine`: this rank's
// Watchdog::fingerprint(), taken before this call, whose own collectives are symmetric and
// so do not make ranks differ) with rank 0's. Returns "" on every rank when every rank's
// count and hash equal rank 0's, else on every rank the same report:
//   "the ranks that differ from rank 0 (N collectives, last OP):
//     rank R: M collectives, last OP ...   (one line per rank that differs, in rank order)
//     the job would hang at the next collective they do not share"
// (each rank's `last` cut to 199 bytes). The caller says when and what to do (the Trainer
// throws, prefixing the step).
// Cost: an all-gather of 16 bytes per rank, and one of 200 bytes per rank.
std::string desync_report(Communicator& comm, const Watchdog::Fingerprint& mine);

// The job: this process's place in it as MPI knows it, and how it ends. Not collective;
// valid whether MPI is initialised, running or finalised; thread-safe (MPI_THREAD_MULTIPLE
// or no MPI at all).

// True while MPI is initialised and not yet finalised (the runtime has started the ranks).
bool job_running();
// MPI_COMM_WORLD's size while job_running(); 1 before MPI starts and after it ends.
int job_world_size();
// This process's rank in MPI_COMM_WORLD while job_running(); 0 before and after.
int job_rank();

// Ends the whole job now, with exit status `code`: MPI_Abort(MPI_COMM_WORLD, code) while
// job_running() (the launcher, mpirun or srun, then ends every other rank, which would
// otherwise wait forever in its next collective), else this process alone (std::_Exit:
// no destructors, no atexit handlers, no stream flushes: a thread of it may be blocked).
// The only function of reel's libraries that ends the process; only the launcher (the
// `reel` executable's main.cpp) calls it. Callers abort their NCCL communicators first
// (AbortRegistry::abort_all) and print what happened before calling it.
[[noreturn]] void abort_job(int code);

}  // namespace reel
