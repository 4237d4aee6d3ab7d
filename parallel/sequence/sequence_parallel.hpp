// Sequence parallelism for any Model (model/model.hpp): the attention function it
// installs, and the token layout the Trainer slices samples by.
//
// Each rank of an sp group holds its layout share of every clip's tokens (layout.hpp);
// token-wise layers run on those alone. Attention is the only exchange:
//   ulysses  all-to-all q, k, v to [the group's tokens, H/sp heads], attend, all-to-all back;
//   ring     keep the queries, pass key/value blocks round the ring (ring.hpp);
//   hybrid   all-to-all inside groups of `ulysses` ranks, then a ring across the groups
//            over their combined tokens (as USP does).
// The frame-causal mask follows the frame-group of every query and key token, so any
// assignment of tokens to ranks attends exactly as the unsplit clip does.
#pragma once

#include <memory>

#include "reel/dist/process_mesh.hpp"
#include "reel/model/model.hpp"
#include "reel/parallel/sequence/layout.hpp"
#include "reel/parallel/sequence/ring.hpp"
#include "reel/parallel/sequence/ulysses.hpp"

namespace reel {

struct SequenceStats {
  int64_t bytes_sent = 0;                      // attention traffic this rank sent (all-to-all and ring)
  double ring_compute_s = 0, ring_wait_s = 0;  // see RingStats
  int64_t ring_work = 0;
};

class SequenceParallel {
 public:
  // Validates the split (check_sequence_split) against the mesh's ulysses and ring
  // groups; throws std::invalid_argument naming the numbers. With sp = 1: the whole clip
  // on every rank and nothing to install.
  SequenceParallel(const Model& model, const ProcessMesh& mesh, const SequenceConfig& config);
  SequenceParallel(const SequenceParallel&) = delete;
  SequenceParallel& operator=(const SequenceParallel&) = delete;

  const SequenceLayout& layout() const { return layout_; }
  // [Lc] int64 clip positions of this rank's tokens (every position with sp = 1).
  const at::Tensor& index() const { return index_; }
  bool active() const { return layout_.size() > 1; }

  // The attention over this rank's tokens: in.q/k/v [B, H, Lc, hd] with Lc = index()'s
  // length. Collective over the sp group. Returns out [B, H, Lc, hd]; lse is left
  // undefined under sequence parallelism (the model does not use it).
  AttentionResult operator()(const AttentionInputs& in);
  // Installs *this as the model's attention (the model keeps it alive).
  static void install(Model& model, const std::shared_ptr<SequenceParallel>& sp);

  // Attention traffic this rank sends per transformer block for one forward and backward
  // on `batch` clips (no activation-checkpoint recomputation), in bytes, from the layout:
  //   Ulysses: q, k, v out and the output back, forward and backward: the (U-1)/U of
  //            each that leaves the rank;
  //   ring:    R-1 key/value blocks forward, R-1 again and R dK/dV accumulators (fp32)
  //            backward, each block the size of its owner's share.
  int64_t expected_bytes_per_block(int64_t batch, int64_t element_size) const;
  SequenceStats take_stats();

 private:
  SequenceShape shape_;
  SequenceConfig config_;
  SequenceLayout layout_;
  at::Tensor index_;
  at::Tensor groups_;  // [n] frame-group of every token this rank attends over (its ring share), host
  UlyssesGroup ulysses_;
  RingGroup ring_;
  int64_t ulysses_bytes_ = 0;
  RingStats ring_stats_;
};

}  // namespace reel
