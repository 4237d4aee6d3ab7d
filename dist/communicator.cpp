// Argument checks shared by every backend, and the blocking forms of each call.
#include "reel/dist/communicator.hpp"

#include "reel/dist/watchdog.hpp"

#include <ATen/ATen.h>

#include <numeric>
#include <sstream>

#include "reel/dist/error.hpp"
#include "reel/dist/trace.hpp"
#include "reel/dist/traffic.hpp"

namespace reel {

std::string to_string(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
  }
  return "unknown";
}

namespace {

bool supported_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
    case at::kDouble:
    case at::kHalf:
    case at::kBFloat16:
    case at::kLong:
    case at::kInt:
    case at::kChar:
    case at::kByte:
      return true;
    default:
      return false;
  }
}

// Elements per dim-0 row: the product of the other dims (well defined with zero rows).
int64_t row_numel(const at::Tensor& t) {
  int64_t n = 1;
  for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return n;
}

int64_t nbytes(const at::Tensor& t) { return static_cast<int64_t>(t.nbytes()); }

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes() << " " << t.scalar_type();
  return s.str();
}

// Codes for the consistency check: which call a rank is making.
enum OpCode : int64_t {
  kAllReduce = 1,
  kAllGather,
  kReduceScatter,
  kAllToAll,
  kAllToAllV,
  kBroadcast,
  kBarrier,
  kSplit
};

int64_t code_of(const std::string& op) {
  if (op == "all_reduce") return kAllReduce;
  if (op == "all_gather") return kAllGather;
  if (op == "reduce_scatter") return kReduceScatter;
  if (op == "all_to_all") return kAllToAll;
  if (op == "all_to_all_v") return kAllToAllV;
  if (op == "broadcast") return kBroadcast;
  if (op == "barrier") return kBarrier;
  return kSplit;
}

}  // namespace

void Communicator::check_tensor(const std::string& op, const at::Tensor& t) const {
  if (!t.defined()) throw_invalid(op, "tensor is undefined");
  check_device(op, t);
  if (!supported_dtype(t.scalar_type())) {
    std::ostringstream s;
    s << "dtype " << t.scalar_type()
      << " is not supported (float32, float64, float16, bfloat16, int64, int32, int8, uint8)";
    throw_invalid(op, s.str());
  }
  if (!t.is_contiguous()) throw_invalid(op, "tensor " + shape_of(t) + " is not contiguous");
}

void Communicator::check_pair(const std::string& op, const at::Tensor& in, const at::Tensor& out) const {
  check_tensor(op, in);
  check_tensor(op, out);
  if (in.scalar_type() != out.scalar_type()) {
    throw_invalid(op, "input dtype " + std::string(c10::toString(in.scalar_type())) + " differs from output dtype " +
                          c10::toString(out.scalar_type()));
  }
  if (in.device() != out.device()) {
    throw_invalid(op, "input on " + in.device().str() + " but output on " + out.device().str());
  }
}

void Communicator::check_reduce(const std::string& op, const at::Tensor& t, ReduceOp reduce) const {
  if (reduce == ReduceOp::kAvg && !at::isFloatingType(t.scalar_type())) {
    throw_invalid(op, "avg needs a floating dtype, got " + std::string(c10::toString(t.scalar_type())));
  }
}

void Communicator::count(const char* op, int64_t bytes, int64_t internode) {
  // The traced span carries the bytes counted here (dist/trace.hpp); the backend picks it up.
  trace::issue(this, op, label_, last_op_, size_ <= 1 || bytes <= 0 ? 0 : bytes);
  if (size_ <= 1 || bytes <= 0) return;
  auto& slot = counters_[op];  // one lookup in a handful of entries; no lock, no allocation
  if (!slot) slot = traffic::counter(label_, op);
  slot->fetch_add(bytes, std::memory_order_relaxed);
  if (internode <= 0) return;
  auto& across = internode_counters_[op];
  if (!across) across = traffic::internode_counter(label_, op);
  across->fetch_add(internode, std::memory_order_relaxed);
}

void Communicator::set_label(std::string label) {
  label_ = std::move(label);
  counters_.clear();  // counted under the new label from now on
  internode_counters_.clear();
}

void Communicator::set_nodes(std::vector<int> node_of_rank) {
  if (!node_of_rank.empty() && static_cast<int>(node_of_rank.size()) != size_) {
    throw_invalid("set_nodes",
                  "one node per rank (" + std::to_string(size_) + "), got " + std::to_string(node_of_rank.size()));
  }
  nodes_ = std::move(node_of_rank);
}

bool Communicator::remote(int peer) const { return !nodes_.empty() && nodes_[peer] != nodes_[rank_]; }

void Communicator::note(const std::string& op, const at::Tensor& t, bool symmetric) {
  std::ostringstream detail;
  if (t.defined()) detail << c10::toString(t.scalar_type()) << " " << t.sizes();
  uint64_t signature = 0;
  if (symmetric) {
    const uint64_t dtype = t.defined() ? static_cast<uint64_t>(t.scalar_type()) + 1 : 0;
    signature = (static_cast<uint64_t>(code_of(op)) << 56) ^ (dtype << 48) ^ (static_cast<uint64_t>(size_) << 32) ^
                static_cast<uint64_t>(t.defined() ? t.numel() : 0) ^ 0x9e3779b97f4a7c15ull;
  }
  const uint64_t seq = Watchdog::issued(this, label_, op, detail.str(), signature);
  last_op_ = op + " #" + std::to_string(seq) + " on " + label_ + " (" + std::to_string(size_) + " ranks, this rank " +
             std::to_string(rank_) + ") " + detail.str();
}

WorkPtr Communicator::described(WorkPtr work) {
  if (work) work->set_description(last_op_);
  return work;
}

void Communicator::verify(const std::string& op, const at::Tensor& t, int64_t extra, bool same_numel) {
  note(op, t, same_numel);
  if (!options_.verify_consistency || size_ == 1) return;
  const int64_t mine[4] = {code_of(op), t.defined() ? static_cast<int64_t>(t.scalar_type()) : -1,
                           t.defined() && same_numel ? t.numel() : 0, extra};
  auto local = at::tensor(at::ArrayRef<int64_t>(mine, 4), at::kLong).to(device());
  auto all = at::empty({size_ * 4}, local.options());
  do_all_gather(local, all)->wait();
  auto cpu = all.cpu();
  const int64_t* s = cpu.data_ptr<int64_t>();
  for (int r = 1; r < size_; ++r) {
    if (std::equal(s, s + 4, s + 4 * r)) continue;
    auto describe = [&](int q) {
      std::ostringstream d;
      d << "rank " << q << " has (op " << s[4 * q] << ", dtype "
        << (s[4 * q + 1] < 0 ? "none" : c10::toString(static_cast<at::ScalarType>(s[4 * q + 1]))) << ", numel "
        << s[4 * q + 2] << ", arg " << s[4 * q + 3] << ")";
      return d.str();
    };
    throw_invalid(op, "ranks disagree on the call: " + describe(0) + ", " + describe(r));
  }
}

void Communicator::verify_splits(const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows) {
  // Every rank gathers every rank's (send, recv) splits and checks the whole matrix, so
  // that all ranks throw together: recv_rows[j] on rank i must equal send_rows[i] on rank j.
  std::vector<int64_t> mine(send_rows);
  mine.insert(mine.end(), recv_rows.begin(), recv_rows.end());
  auto local = at::tensor(mine, at::kLong).to(device());
  auto all = at::empty({size_ * 2 * size_}, local.options());
  do_all_gather(local, all)->wait();
  auto cpu = all.cpu();
  const int64_t* m = cpu.data_ptr<int64_t>();
  for (int i = 0; i < size_; ++i) {
    for (int j = 0; j < size_; ++j) {
      const int64_t expects = m[i * 2 * size_ + size_ + j], sends = m[j * 2 * size_ + i];
      if (expects == sends) continue;
      throw_invalid("all_to_all_v", "rank " + std::to_string(i) + " expects " + std::to_string(expects) +
                                        " rows from rank " + std::to_string(j) + ", which sends " +
                                        std::to_string(sends));
    }
  }
}

WorkPtr Communicator::all_reduce_async(const at::Tensor& tensor, ReduceOp op) {
  return all_reduce_async(tensor, tensor, op);
}

WorkPtr Communicator::all_reduce_async(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  check_pair("all_reduce", input, output);
  check_reduce("all_reduce", input, op);
  if (input.numel() != output.numel()) {
    throw_invalid("all_reduce", "input " + shape_of(input) + " and output " + shape_of(output) + " differ in numel");
  }
  verify("all_reduce", input, static_cast<int64_t>(op));
  const int64_t bytes = 2 * (size_ - 1) * nbytes(input) / size_;
  count("all_reduce", bytes, ring_internode(bytes));
  return described(do_all_reduce(input, output, op));
}

WorkPtr Communicator::all_gather_async(const at::Tensor& input, const at::Tensor& output) {
  check_pair("all_gather", input, output);
  if (output.numel() != input.numel() * size_) {
    throw_invalid("all_gather", "output " + shape_of(output) + " must have " + std::to_string(size_) +
                                    " x input numel (input " + shape_of(input) + ")");
  }
  verify("all_gather", input);
  const int64_t bytes = (size_ - 1) * nbytes(input);
  count("all_gather", bytes, ring_internode(bytes));
  return described(do_all_gather(input, output));
}

WorkPtr Communicator::reduce_scatter_async(const at::Tensor& input, const at::Tensor& output, ReduceOp op) {
  check_pair("reduce_scatter", input, output);
  check_reduce("reduce_scatter", input, op);
  if (input.numel() != output.numel() * size_) {
    throw_invalid("reduce_scatter", "input " + shape_of(input) + " must have " + std::to_string(size_) +
                                        " x output numel (output " + shape_of(output) + ")");
  }
  verify("reduce_scatter", output, static_cast<int64_t>(op));
  const int64_t bytes = (size_ - 1) * nbytes(output);
  count("reduce_scatter", bytes, ring_internode(bytes));
  return described(do_reduce_scatter(input, output, op));
}

WorkPtr Communicator::all_to_all_async(const at::Tensor& input, const at::Tensor& output) {
  check_pair("all_to_all", input, output);
  if (input.numel() != output.numel() || input.numel() % size_ != 0) {
    throw_invalid("all_to_all", "input " + shape_of(input) + " and output " + shape_of(output) +
                                    " must have equal numel divisible by " + std::to_string(size_) + " ranks");
  }
  verify("all_to_all", input);
  int64_t remote_peers = 0;
  for (int r = 0; r < size_; ++r) remote_peers += remote(r) ? 1 : 0;
  count("all_to_all", (size_ - 1) * nbytes(input) / size_, remote_peers * nbytes(input) / size_);
  std::vector<int64_t> counts(size_, input.numel() / size_);
  return described(do_all_to_all(input, output, counts, counts));
}

WorkPtr Communicator::all_to_all_async(const at::Tensor& input, const at::Tensor& output,
                                       const std::vector<int64_t>& send_rows, const std::vector<int64_t>& recv_rows) {
  const std::string op = "all_to_all_v";
  check_pair(op, input, output);
  if (input.dim() == 0 || output.dim() == 0) throw_invalid(op, "tensors need a dim 0 to split");
  if (static_cast<int>(send_rows.size()) != size_ || static_cast<int>(recv_rows.size()) != size_) {
    throw_invalid(op, "need one split per rank (" + std::to_string(size_) + "), got " +
                          std::to_string(send_rows.size()) + " send and " + std::to_string(recv_rows.size()) +
                          " recv splits");
  }
  for (int r = 0; r < size_; ++r) {
    if (send_rows[r] < 0 || recv_rows[r] < 0) throw_invalid(op, "negative split");
  }
  const int64_t in_rows = std::accumulate(send_rows.begin(), send_rows.end(), int64_t{0});
  const int64_t out_rows = std::accumulate(recv_rows.begin(), recv_rows.end(), int64_t{0});
  if (in_rows != input.size(0) || out_rows != output.size(0)) {
    throw_invalid(op, "splits sum to " + std::to_string(in_rows) + " send / " + std::to_string(out_rows) +
                          " recv rows but input " + shape_of(input) + " and output " + shape_of(output));
  }
  const int64_t row = row_numel(input);
  const int64_t out_row = row_numel(output);
  if (row != out_row) throw_invalid(op, "input and output rows differ in size");
  if (input.data_ptr() == output.data_ptr() && input.numel() > 0) {
    throw_invalid(op, "input and output must not alias");
  }
  verify(op, input, row, /*same_numel=*/false);  // uneven splits differ in size by design
  if (options_.verify_consistency) verify_splits(send_rows, recv_rows);
  std::vector<int64_t> send_counts(size_), recv_counts(size_);
  for (int r = 0; r < size_; ++r) {
    send_counts[r] = send_rows[r] * row;
    recv_counts[r] = recv_rows[r] * row;
  }
  int64_t remote_rows = 0;
  for (int r = 0; r < size_; ++r) remote_rows += remote(r) ? send_rows[r] : 0;
  count("all_to_all_v", (in_rows - send_rows[rank_]) * row * input.element_size(),
        remote_rows * row * input.element_size());
  return described(do_all_to_all(input, output, send_counts, recv_counts));
}

WorkPtr Communicator::broadcast_async(const at::Tensor& tensor, int root) {
  check_tensor("broadcast", tensor);
  if (root < 0 || root >= size_) {
    throw_invalid("broadcast", "root " + std::to_string(root) + " is outside [0, " + std::to_string(size_) + ")");
  }
  verify("broadcast", tensor, root);
  if (rank_ == root) count("broadcast", nbytes(tensor), ring_internode(nbytes(tensor)));
  return described(do_broadcast(tensor, root));
}

namespace {
void check_peer(const std::string& op, int peer, int tag, int size) {
  if (peer < 0 || peer >= size) {
    throw_invalid(op, "peer " + std::to_string(peer) + " is outside [0, " + std::to_string(size) + ")");
  }
  if (tag < 0) throw_invalid(op, "tag must be >= 0, got " + std::to_string(tag));
}
}  // namespace

WorkPtr Communicator::send_async(const at::Tensor& tensor, int peer, int tag) {
  check_tensor("send", tensor);
  check_peer("send", peer, tag, size_);
  note("send", tensor, false);
  count("send", nbytes(tensor), remote(peer) ? nbytes(tensor) : 0);
  return described(do_send(tensor, peer, tag));
}

WorkPtr Communicator::recv_async(const at::Tensor& tensor, int peer, int tag) {
  check_tensor("recv", tensor);
  check_peer("recv", peer, tag, size_);
  note("recv", tensor, false);
  trace::issue(this, "recv", label_, last_op_, 0);  // counted at the sender
  return described(do_recv(tensor, peer, tag));
}

WorkPtr Communicator::sendrecv_async(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag) {
  check_tensor("sendrecv", send);
  check_tensor("sendrecv", recv);
  check_peer("sendrecv", dst, tag, size_);
  check_peer("sendrecv", src, tag, size_);
  if (send.data_ptr() == recv.data_ptr() && send.numel() > 0) {
    throw_invalid("sendrecv", "send and recv tensors must not alias");
  }
  note("sendrecv", send, false);
  count("sendrecv", nbytes(send), remote(dst) ? nbytes(send) : 0);
  return described(do_sendrecv(send, dst, recv, src, tag));
}

WorkPtr Communicator::barrier_async() {
  verify("barrier", at::Tensor());
  trace::issue(this, "barrier", label_, last_op_, 0);
  return described(do_barrier());
}

std::shared_ptr<Communicator> Communicator::split(int color, int key) {
  if (color < 0) throw_invalid("split", "color must be >= 0, got " + std::to_string(color));
  verify("split", at::Tensor());
  return do_split(color, key);
}

template <typename Fn>
void Communicator::run_blocking(Fn&& fn) {
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{blocking_call_};
  // The MPI backend runs a blocking call inline inside fn(): the watchdog covers both.
  Watchdog::Blocked blocked("a blocking collective on " + label_ + " (the last op issued is in the history)");
  blocking_call_ = true;
  WorkPtr work = fn();
  blocking_call_ = false;
  work->wait();
}

void Communicator::all_reduce(const at::Tensor& t, ReduceOp op) {
  run_blocking([&] { return all_reduce_async(t, op); });
}
void Communicator::all_gather(const at::Tensor& in, const at::Tensor& out) {
  run_blocking([&] { return all_gather_async(in, out); });
}
void Communicator::reduce_scatter(const at::Tensor& in, const at::Tensor& out, ReduceOp op) {
  run_blocking([&] { return reduce_scatter_async(in, out, op); });
}
void Communicator::all_to_all(const at::Tensor& in, const at::Tensor& out) {
  run_blocking([&] { return all_to_all_async(in, out); });
}
void Communicator::broadcast(const at::Tensor& t, int root) {
  run_blocking([&] { return broadcast_async(t, root); });
}
void Communicator::send(const at::Tensor& t, int peer, int tag) {
  run_blocking([&] { return send_async(t, peer, tag); });
}
void Communicator::recv(const at::Tensor& t, int peer, int tag) {
  run_blocking([&] { return recv_async(t, peer, tag); });
}
void Communicator::sendrecv(const at::Tensor& send, int dst, const at::Tensor& recv, int src, int tag) {
  run_blocking([&] { return sendrecv_async(send, dst, recv, src, tag); });
}
void Communicator::barrier() {
  run_blocking([&] { return barrier_async(); });
}

}  // namespace reel
