// Communicator: one collective-communication API over tensors, with one subclass per
// backend (MPI on CPU ranks, NCCL on GPUs). Training code is written against this class
// only, so the same code runs on both.
//
// Contract common to every call:
// - Every rank of the communicator issues the same calls in the same order, with the same
//   dtype and the sizes stated per call. Calls on different communicators are independent
//   (each has its own ordering); a communicator is used from one thread at a time.
// - Tensors are contiguous, of a supported dtype (float32, float64, float16, bfloat16,
//   int64, int32, int8, uint8), on the backend's device kind: CPU or CUDA for MPI (CUDA
//   staged through host memory), CUDA for NCCL. Input and output of one call have the same
//   dtype and device. Any shape is accepted: counts are in elements (numel), except for
//   all_to_all with explicit splits, which counts dim-0 rows.
// - Every call has an async form returning a Work (see work.hpp): the output may be read
//   only after wait(). The plain form is the async form followed by wait().
// - Bad input throws std::invalid_argument naming the call, the rank and the mismatch,
//   before anything is sent. Sizes that differ between ranks cannot be seen locally: with
//   CommOptions::verify_consistency every call first compares (op, dtype, sizes) across
//   ranks and throws on every rank, naming the ranks that disagree.
// - A failed backend call throws DistError (op, rank, host, file, line).
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reel/dist/work.hpp"

namespace reel {

enum class ReduceOp { kSum, kAvg, kMax };
std::string to_string(ReduceOp op);

struct CommOptions {
  // Compare every call's (op, dtype, sizes) across ranks first: one extra small
  // all-gather per call. For tests and debugging.
  bool verify_consistency = false;
  // How long a NCCL operation may run before the communicator is aborted.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const CommOptions& options() const { return options_; }
  // A name for messages and hang dumps (ProcessMesh names its axes: "world", "dp", ...).
  void set_label(std::string label);
  const std::string& label() const { return label_; }
  // Which node each rank of this communicator runs on (index: rank here; value: any
  // number naming the node). ProcessMesh sets it for every communicator it builds; unset,
  // every rank counts as on this rank's node. Splits the traffic counters into bytes that
  // stay inside the node and bytes that cross (dist/traffic.hpp).
  void set_nodes(std::vector<int> node_of_rank);
  const std::vector<int>& nodes() const { return nodes_; }
  // "mpi" or "nccl".
  virtual std::string backend() const = 0;
  // The device on which this communicator prefers tensors (CPU for MPI, the local GPU for
  // NCCL). Helpers that build tensors of their own (metadata, barriers) put them here.
  virtual at::Device device() const = 0;

  // tensor [*]: reduced over all ranks in place. AVG needs a floating dtype. 16-bit floats
  // travel and are reduced in their own width on every backend (MPI: dist/mpi_half.hpp,
  // each combination computed in fp32 and rounded once, as NCCL does).
  WorkPtr all_reduce_async(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum);
  // Out of place: output [*] gets the reduction of every rank's input [*] (same numel).
  WorkPtr all_reduce_async(const at::Tensor& input, const at::Tensor& output, ReduceOp op);
  // input [n] per rank -> output [size * n], rank r's input at elements [r*n, (r+1)*n).
  // In place when input is exactly that slice of output.
  WorkPtr all_gather_async(const at::Tensor& input, const at::Tensor& output);
  // input [size * n] -> output [n] = reduction over ranks of input[rank*n, (rank+1)*n).
  // In place when output is that slice of input (done through a temporary on MPI).
  WorkPtr reduce_scatter_async(const at::Tensor& input, const at::Tensor& output, ReduceOp op = ReduceOp::kSum);
  // input [size * n] -> output [size * n]: chunk j of input goes to rank j, chunk i of
  // output comes from rank i. In place when input and output are the same tensor.
  WorkPtr all_to_all_async(const at::Tensor& input, const at::Tensor& output);
  // Explicit splits in dim-0 rows: input rows [sum(send_rows)] — send_rows[j] rows to rank
  // j, in rank order; output rows [sum(recv_rows)] — recv_rows[i] rows from rank i. Both
  // tensors have the same row size (numel / size(0)). recv_rows[i] on this rank must equal
  // send_rows[this rank] on rank i. Not in place.
  WorkPtr all_to_all_async(const at::Tensor& input, const at::Tensor& output, const std::vector<int64_t>& send_rows,
                           const std::vector<int64_t>& recv_rows);
  // tensor [*] on every rank becomes root's tensor.
  WorkPtr broadcast_async(const at::Tensor& tensor, int root);
  // Point to point: tensor [*] to / from peer; matching send and recv have the same numel,
  // dtype and tag (tag >= 0). Sends and receives between one pair with the same tag are
  // matched in the order posted. Unlike collectives these need no global order.
  WorkPtr send_async(const at::Tensor& tensor, int peer, int tag = 0);
  WorkPtr recv_async(const at::Tensor& tensor, int peer, int tag = 0);
  // Both directions of a ring step at once: tensor `send` to rank dst while receiving
  // `recv` from rank src (send and recv must not alias). Use this, not send then recv, for
  // exchanges where every rank sends and receives: it cannot deadlock on any backend.
  WorkPtr sendrecv_async(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag = 0);
  // Returns once every rank has entered the barrier.
  WorkPtr barrier_async();

  void all_reduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum);
  void all_gather(const at::Tensor& input, const at::Tensor& output);
  void reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op = ReduceOp::kSum);
  void all_to_all(const at::Tensor& input, const at::Tensor& output);
  void broadcast(const at::Tensor& tensor, int root);
  void send(const at::Tensor& tensor, int peer, int tag = 0);
  void recv(const at::Tensor& tensor, int peer, int tag = 0);
  void sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag = 0);
  void barrier();

  // Collective over this communicator: ranks passing the same color form a new
  // communicator, ordered by (key, rank). Every rank must call it; color >= 0.
  std::shared_ptr<Communicator> split(int color, int key);

  // From now on, this communicator's calls and `other`'s run in one order — the order
  // they were issued in, over both — never two at once. Local (not collective); call it
  // before either has a call in flight, on every rank alike. For communicators whose
  // collectives are chained (FSDP's reduce-scatter over the shard group, then the
  // all-reduce over the replicas): as long as every rank issues the calls of both in
  // the same order, one issue order cannot deadlock. MPI: both use one progress thread
  // (Open MPI 4.1 corrupted memory with collectives of two communicators in flight from
  // two threads); NCCL: nothing to do (each orders its own stream; a Work orders the
  // streams that use its result).
  virtual void share_progress(Communicator& other) { (void)other; }

 protected:
  Communicator(int rank, int size, CommOptions options) : rank_(rank), size_(size), options_(options) {}

  // Backend implementations: arguments already validated as documented above.
  virtual WorkPtr do_all_reduce(const at::Tensor& input, const at::Tensor& output, ReduceOp op) = 0;
  virtual WorkPtr do_all_gather(const at::Tensor& input, const at::Tensor& output) = 0;
  virtual WorkPtr do_reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) = 0;
  // Counts in elements, one per rank.
  virtual WorkPtr do_all_to_all(const at::Tensor& input, const at::Tensor& output,
                                const std::vector<int64_t>& send_counts, const std::vector<int64_t>& recv_counts) = 0;
  virtual WorkPtr do_broadcast(const at::Tensor& tensor, int root) = 0;
  virtual WorkPtr do_send(const at::Tensor& tensor, int peer, int tag) = 0;
  virtual WorkPtr do_recv(const at::Tensor& tensor, int peer, int tag) = 0;
  virtual WorkPtr do_sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag) = 0;
  virtual WorkPtr do_barrier() = 0;
  virtual std::shared_ptr<Communicator> do_split(int color, int key) = 0;

  // Checks the device kind of a tensor (the MPI and NCCL rules differ).
  virtual void check_device(const std::string& op, const at::Tensor& t) const = 0;

  // True while a blocking form (all_reduce, ...) is being served: the caller waits at
  // once, so a backend may run the call on the caller's thread instead of handing it off.
  bool blocking_call() const { return blocking_call_; }

 private:
  void check_tensor(const std::string& op, const at::Tensor& t) const;
  void check_pair(const std::string& op, const at::Tensor& in, const at::Tensor& out) const;
  void check_reduce(const std::string& op, const at::Tensor& t, ReduceOp reduce) const;
  // With options_.verify_consistency: all ranks agree on (op, dtype, sizes) or all throw.
  // same_numel = false: ranks may pass different sizes (explicit all-to-all splits,
  // checked by verify_splits); op, dtype and `extra` must still agree.
  void verify(const std::string& op, const at::Tensor& t, int64_t extra = 0, bool same_numel = true);
  // Adds bytes (dist/traffic.hpp) under this communicator's label, and `internode` of
  // them to its inter-node counter; nothing on one rank.
  void count(const char* op, int64_t bytes, int64_t internode);
  // Whether `peer` (a rank here) runs on another node than this rank.
  bool remote(int peer) const;
  // A ring algorithm's bytes: all of them cross when the next rank is on another node.
  int64_t ring_internode(int64_t bytes) const { return remote((rank_ + 1) % size_) ? bytes : 0; }
  // Numbers the op in the watchdog's history (dist/watchdog.hpp) and remembers it.
  // symmetric: every rank passes the same sizes (folded into the desync fingerprint).
  void note(const std::string& op, const at::Tensor& t, bool symmetric);
  // Gives the work the last noted op as its description (what a blocked wait reports).
  WorkPtr described(WorkPtr work);
  void verify_splits(const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows);

  // Runs fn (an async form) with blocking_call() true, then waits on its Work.
  template <typename Fn>
  void run_blocking(Fn&& fn);

  int rank_;
  int size_;
  CommOptions options_;
  bool blocking_call_ = false;
  std::string label_ = "a communicator";
  // dist/traffic.hpp's counters of this label, by call (the literal's address: two
  // literals of one name share the counter they point to).
  std::map<const char*, std::atomic<int64_t>*> counters_, internode_counters_;
  std::vector<int> nodes_;  // node of each rank; empty: all on one node
  std::string last_op_;     // the last op issued, as the watchdog numbered it
};

using CommunicatorPtr = std::shared_ptr<Communicator>;

}  // namespace reel
