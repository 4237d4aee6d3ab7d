// Which tokens of a clip each rank of a sequence-parallel group holds, and the options
// that choose it.
//
// sp = ulysses x ring; sp rank = ring rank x ulysses + ulysses rank (as ProcessMesh
// builds the groups). The clip's L tokens are cut into chunks and dealt to the ring:
//   contiguous  R chunks, ring rank i takes chunk i;
//   zigzag      2R chunks, ring rank i takes chunks i and 2R-1-i. Under frame-causal
//               attention a query sees only earlier tokens, so a contiguous split leaves
//               the first ring rank almost idle and the last with the most work; pairing
//               an early chunk with a late one evens the visible key count per rank.
// Inside a ring rank's share, each chunk is split again into `ulysses` consecutive
// pieces, piece u for ulysses rank u; after the Ulysses all-to-all the ulysses group
// holds its ring rank's whole share (in ulysses-rank order).
// Chunks are as even as the numbers allow (sizes differ by at most one token), so a clip
// need not divide by the degrees; it needs at least one token per piece.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "reel/dist/enum_names.hpp"
#include "reel/model/sequence_shape.hpp"

namespace reel {

// ulysses (all-to-all) | ring | hybrid (all-to-all inside, ring across)
enum class SpMode { kUlysses, kRing, kHybrid };
constexpr EnumNames<SpMode, 3> enum_names(SpMode) {
  return {{{SpMode::kUlysses, "ulysses"}, {SpMode::kRing, "ring"}, {SpMode::kHybrid, "hybrid"}}};
}
// How the ring's chunks are dealt (see above).
enum class SpBalance { kZigzag, kContiguous };
constexpr EnumNames<SpBalance, 2> enum_names(SpBalance) {
  return {{{SpBalance::kZigzag, "zigzag"}, {SpBalance::kContiguous, "contiguous"}}};
}

// The defaults live here; validate() throws std::invalid_argument naming the option.
// The owner of the Ulysses degree: the option parallel.ulysses is `ulysses`, and
// ulysses_degree(sp) the degree every reader asks for (the mesh's ulysses and ring axes
// are built from it: ProcessMesh::create).
struct SequenceConfig {
  SpMode mode = SpMode::kUlysses;
  int ulysses = 0;  // hybrid: the all-to-all degree (1 < ulysses < sp, divides sp); 0 otherwise
  SpBalance balance = SpBalance::kZigzag;
  bool ring_overlap = true;  // send the next key/value block while computing this one
  void validate() const;
  // The all-to-all degree for sequence-parallel degree sp: sp (ulysses), 1 (ring), or
  // `ulysses` (hybrid). Throws std::invalid_argument naming the numbers.
  int ulysses_degree(int sp) const;
};

// Throws std::invalid_argument, naming the numbers and what to change, when this model
// cannot be split this way: heads not divisible by the Ulysses degree, or fewer tokens
// than pieces.
void check_sequence_split(const SequenceShape& model, int ring, int ulysses, const SequenceConfig& config);

class SequenceLayout {
 public:
  SequenceLayout() = default;  // one rank holding every token of a 0-token clip
  // Throws std::invalid_argument when tokens < the number of pieces.
  static SequenceLayout create(int64_t tokens, int ring, int ulysses, SpBalance balance);
  // No sequence parallelism: one rank, every token in order.
  static SequenceLayout whole(int64_t tokens) { return create(tokens, 1, 1, SpBalance::kContiguous); }

  int64_t tokens() const { return tokens_; }
  int ring() const { return ring_; }
  int ulysses() const { return ulysses_; }
  int size() const { return ring_ * ulysses_; }
  // [Lc] int64 clip positions of sp rank r's tokens, in the order that rank holds them.
  const at::Tensor& index(int sp_rank) const { return index_.at(sp_rank); }
  int64_t count(int sp_rank) const { return index(sp_rank).size(0); }
  // Ring rank i's share (its ulysses group's tokens, in ulysses-rank order): [n] int64.
  at::Tensor ring_share(int ring_rank) const;

 private:
  int64_t tokens_ = 0;
  int ring_ = 1, ulysses_ = 1;
  std::vector<at::Tensor> index_;  // per sp rank
};

// Attention traffic one rank (sp rank `sp_rank` of `layout`) sends per transformer block
// on `batch` clips of width `dim`, in bytes (dist/traffic.hpp's counting: what leaves
// the rank). `element_size`: the compute dtype's.
//   Ulysses: forward scatters q, k, v (this rank's tokens, the others' heads) and gathers
//            the output back; backward the reverse. Only the (U-1)/U that leaves counts.
//   ring:    forward R-1 key/value blocks; backward R-1 again plus R dK/dV accumulators
//            (fp32), each block the size of its owner's share.
// An activation-checkpointed block pays `forward` twice (its recomputation).
// remote(s): whether sp rank s runs on another node than `sp_rank` (null: none does); the
// *_internode fields count what goes to those ranks (the ring sends to its next rank).
struct AttentionTraffic {
  int64_t all_to_all_forward = 0, all_to_all_backward = 0;  // over the ulysses group
  int64_t ring_forward = 0, ring_backward = 0;              // over the ring group
  int64_t all_to_all_forward_internode = 0, all_to_all_backward_internode = 0;
  int64_t ring_forward_internode = 0, ring_backward_internode = 0;
  int64_t forward() const { return all_to_all_forward + ring_forward; }
  int64_t backward() const { return all_to_all_backward + ring_backward; }
};
AttentionTraffic attention_traffic(const SequenceLayout& layout, int64_t dim, int sp_rank, int64_t batch,
                                   int64_t element_size, const std::function<bool(int)>& remote = nullptr);

}  // namespace reel
