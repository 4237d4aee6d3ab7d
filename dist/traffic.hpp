// Traffic: how many bytes this process's communicators have sent, per communicator label
// and call, counted from the sizes at each call (nothing measured on the wire). The
// planner (`reel plan`) predicts the same numbers; the Trainer reports them per step.
//
// Bytes are what one rank sends to the others under the bandwidth-optimal algorithm
// for each call (as NCCL's "bus bytes" count them), on a communicator of n > 1 ranks:
//   all_gather      (n-1) x the input                (ring)
//   reduce_scatter  (n-1) x the output               (ring)
//   all_reduce      2 (n-1) x the buffer / n, rounded down  (reduce-scatter + all-gather)
//   all_to_all(_v)  what leaves for the other ranks  (direct; the own chunk stays)
//   broadcast       the buffer on the root, nothing elsewhere
//   send, sendrecv  the send buffer; recv and barrier nothing
// A communicator of one rank sends nothing. Thread-safe.
//
// Each count is also split by where the bytes go (Communicator::set_nodes): the part
// sent to a rank on another node is counted again as "internode". Ring algorithms
// (all_gather, reduce_scatter, all_reduce, broadcast) send everything to the next rank of
// the communicator, so a rank's bytes cross when its successor is on another node (with
// ranks placed node by node, one rank per node boundary of the ring sends across);
// all_to_all(_v) counts what goes to each rank on another node; send and sendrecv the
// destination's node. reel plan predicts the same split (plan/estimate.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace reel {

namespace traffic {

// "label.op" -> bytes sent since the process started.
using Counts = std::map<std::string, int64_t>;

// The counter of (label, op), created on first use and kept for the life of the process:
// callers keep the pointer and add to it without a lock (Communicator::count).
std::atomic<int64_t>* counter(const std::string& label, const std::string& op);
// The same, for the bytes of (label, op) that crossed to another node.
std::atomic<int64_t>* internode_counter(const std::string& label, const std::string& op);
Counts snapshot();
Counts snapshot_internode();
// after - before, keeping the keys whose difference is not zero.
Counts since(const Counts& before, const Counts& after);

}  // namespace traffic
}  // namespace reel
