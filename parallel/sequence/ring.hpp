// Ring attention (communication; the block maths is model/attention_blocks.hpp).
//
// Every rank of the ring keeps its queries; the key/value blocks travel round the ring,
// rank r -> r+1, so after R steps every query block has met every key block. Each step
// posts the next transfer before computing on the block in hand (overlap), skips blocks
// that frame-causal masking hides entirely, and merges partial outputs through their
// log-sum-exp.
//
// One autograd function:
//   forward   R steps of (send k/v on, attend to the block held, merge); saves q, k, v
//             and the final out and lse.
//   backward  a second ring pass: the k/v blocks travel again, each with the accumulator
//             of its dK/dV; each rank adds its queries' contribution and passes the
//             accumulator on with the block; after R steps one more hop brings every
//             accumulator home. dQ accumulates locally. No forward is recomputed.
// Each block's maths is LibTorch's fused kernel, once per run of queries over the prefix
// of the block's keys it sees (block_forward / block_backward: the backward kernel is
// given the final merged out and lse, so it yields exactly the block's share); no mask.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "reel/dist/communicator.hpp"

namespace reel {

struct RingStats {
  int64_t bytes_sent = 0;  // k/v blocks and dK/dV accumulators sent by this rank
  double compute_s = 0;    // time in block maths (host time: meaningful on CPU)
  int64_t work = 0;        // score elements the forward computed (block_work), per clip and head
  double wait_s = 0;       // time blocked waiting for a transfer after the block's maths
};

struct RingGroup {
  Communicator* comm = nullptr;    // the ring, size R > 1
  std::vector<at::Tensor> groups;  // [R] frame-group of each ring rank's tokens [n_i], host (the
                                   // tiling reads them; masks copy the slices they need)
  bool overlap = true;             // off: wait for each transfer before computing (to measure)
  RingStats* stats = nullptr;      // optional
};

// The ring must outlive the backward of every graph it was used in (its address is saved
// with the graph; SequenceParallel owns it as long as the model).
// q [B, H, Lq, hd], k, v [B, H, Lk, hd]: this ring rank's tokens (groups[rank]). Returns
// out [B, H, Lq, hd] in q's dtype. Differentiable in q, k and v. Collective over the ring.
at::Tensor ring_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const RingGroup& ring,
                          bool causal);

}  // namespace reel
