#include "reel/parallel/sequence/sequence_parallel.hpp"

#include <stdexcept>

namespace reel {

SequenceParallel::SequenceParallel(const Model& model, const ProcessMesh& mesh, const SequenceConfig& config)
    : shape_(model.sequence_shape()), config_(config) {
  const int sp = mesh.sp(), u = config.ulysses_degree(sp), ring = sp / u;
  if (mesh.ulysses() != u) {
    throw std::invalid_argument("the mesh was built with Ulysses degree " + std::to_string(mesh.ulysses()) +
                                " but parallel.sp_mode " + enum_name(config.mode) + " needs " + std::to_string(u));
  }
  check_sequence_split(shape_, ring, u, config);
  layout_ = SequenceLayout::create(shape_.tokens, ring, u, config.balance);
  index_ = layout_.index(mesh.sp_rank());
  if (!active()) return;
  const int ring_rank = mesh.sp_rank() / u;
  groups_ = model.token_groups(layout_.ring_share(ring_rank));
  for (int i = 0; i < u; ++i) ulysses_.counts.push_back(layout_.count(ring_rank * u + i));
  ulysses_.comm = &mesh.ulysses_group();
  ulysses_.bytes_sent = &ulysses_bytes_;
  ring_.comm = &mesh.ring_group();
  for (int i = 0; i < ring; ++i) {
    ring_.groups.push_back(model.token_groups(layout_.ring_share(i)));
  }
  ring_.overlap = config.ring_overlap;
  ring_.stats = &ring_stats_;
}

AttentionResult SequenceParallel::operator()(const AttentionInputs& in) {
  if (!active()) return attention(in);
  const int64_t b = in.q.size(0), lc = in.q.size(2);
  if (lc != index_.size(0)) {
    throw std::invalid_argument("sequence-parallel attention expects this rank's " + std::to_string(index_.size(0)) +
                                " tokens, got " + std::to_string(lc));
  }
  at::Tensor q = in.q, k = in.k, v = in.v;
  const bool ulysses = ulysses_.comm->size() > 1;
  if (ulysses) {  // one all-to-all for q, k and v together: [3B, H, Lc, hd] -> [3B, H/U, n, hd]
    auto parts = scatter_heads(at::cat({q, k, v}), ulysses_).chunk(3, 0);
    q = parts[0], k = parts[1], v = parts[2];
  }
  at::Tensor out;
  if (ring_.comm->size() > 1) {
    out = ring_attention(q, k, v, ring_, in.causal);
  } else {
    out = attention({q, k, v, groups_, groups_, in.causal}).out;  // host groups: no device sync
  }
  if (ulysses) out = gather_heads(out, ulysses_);
  TORCH_CHECK(out.size(0) == b && out.size(2) == lc, "sequence-parallel attention returned ", out.sizes());
  return {out, at::Tensor()};
}

void SequenceParallel::install(Model& model, const std::shared_ptr<SequenceParallel>& sp) {
  if (!sp->active()) return;
  model.set_attention([sp](const AttentionInputs& in) { return (*sp)(in); });
}

int64_t SequenceParallel::expected_bytes_per_block(int64_t batch, int64_t element_size) const {
  if (!active()) return 0;
  const int sp_rank = ring_.comm->rank() * layout_.ulysses() + ulysses_.comm->rank();
  const auto t = attention_traffic(layout_, shape_.dim, sp_rank, batch, element_size);
  return t.forward() + t.backward();
}

SequenceStats SequenceParallel::take_stats() {
  SequenceStats s{ulysses_bytes_ + ring_stats_.bytes_sent, ring_stats_.compute_s, ring_stats_.wait_s, ring_stats_.work};
  ulysses_bytes_ = 0;
  ring_stats_ = RingStats{};
  return s;
}

}  // namespace reel
