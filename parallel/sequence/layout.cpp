#include "reel/parallel/sequence/layout.hpp"

#include "reel/dist/require.hpp"

namespace reel {
namespace {

// [begin, end) of part `i` of `n` as-even-as-possible parts of [a, b).
std::pair<int64_t, int64_t> part(int64_t a, int64_t b, int64_t i, int64_t n) {
  return {a + (b - a) * i / n, a + (b - a) * (i + 1) / n};
}

}  // namespace

void SequenceConfig::validate() const {
  require(ulysses >= 0, "parallel.ulysses must be >= 0, got " + std::to_string(ulysses));
  require(ulysses == 0 || mode == SpMode::kHybrid, "parallel.ulysses " + std::to_string(ulysses) +
                                                       " applies to parallel.sp_mode hybrid only (the mode is " +
                                                       enum_name(mode) + ")");
}

int SequenceConfig::ulysses_degree(int sp) const {
  validate();
  if (sp <= 1 || mode == SpMode::kRing) return 1;
  if (mode == SpMode::kUlysses) return sp;
  require(ulysses > 1 && ulysses < sp && sp % ulysses == 0,
          "parallel.sp_mode hybrid needs parallel.ulysses to be a divisor of parallel.sp=" + std::to_string(sp) +
              " strictly between 1 and " + std::to_string(sp) + ", got " + std::to_string(ulysses) +
              (sp < 4 ? " (hybrid needs sp >= 4: use ulysses or ring)" : ""));
  return ulysses;
}

void check_sequence_split(const SequenceShape& model, int ring, int ulysses, const SequenceConfig& config) {
  require(model.heads % ulysses == 0,
          "the model's " + std::to_string(model.heads) + " attention heads do not divide over Ulysses degree " +
              std::to_string(ulysses) + " (each rank attends over whole heads): choose parallel.sp_mode ring, or " +
              (config.mode == SpMode::kHybrid ? "a parallel.ulysses" : "a parallel.sp") + " that divides " +
              std::to_string(model.heads));
  const int64_t pieces = int64_t(ring) * ulysses * (config.balance == SpBalance::kZigzag && ring > 1 ? 2 : 1);
  require(model.tokens >= pieces, "a sample of " + std::to_string(model.tokens) + " tokens cannot be split into " +
                                      std::to_string(pieces) + " pieces (sequence parallel degree " +
                                      std::to_string(ring * ulysses) + "): use a smaller parallel.sp");
}

SequenceLayout SequenceLayout::create(int64_t tokens, int ring, int ulysses, SpBalance balance) {
  require(ring >= 1 && ulysses >= 1, "sequence layout: ring and ulysses degrees must be >= 1, got ring " +
                                         std::to_string(ring) + " and ulysses " + std::to_string(ulysses));
  const bool zigzag = balance == SpBalance::kZigzag && ring > 1;
  const int64_t chunks = zigzag ? 2 * ring : ring;
  require(tokens >= chunks * ulysses, "a clip of " + std::to_string(tokens) + " tokens cannot be split into " +
                                          std::to_string(chunks * ulysses) + " pieces");
  SequenceLayout layout;
  layout.tokens_ = tokens;
  layout.ring_ = ring;
  layout.ulysses_ = ulysses;
  for (int r = 0; r < ring; ++r) {
    std::vector<int64_t> mine = {r};
    if (zigzag) mine.push_back(2 * ring - 1 - r);
    for (int u = 0; u < ulysses; ++u) {
      std::vector<at::Tensor> pieces;
      for (int64_t c : mine) {
        const auto [a, b] = part(0, tokens, c, chunks);
        const auto [pa, pb] = part(a, b, u, ulysses);
        pieces.push_back(at::arange(pa, pb, at::kLong));
      }
      layout.index_.push_back(at::cat(pieces));
    }
  }
  return layout;
}

at::Tensor SequenceLayout::ring_share(int ring_rank) const {
  std::vector<at::Tensor> parts;
  for (int u = 0; u < ulysses_; ++u) parts.push_back(index(ring_rank * ulysses_ + u));
  return at::cat(parts);
}

AttentionTraffic attention_traffic(const SequenceLayout& layout, int64_t dim, int sp_rank, int64_t batch,
                                   int64_t element_size, const std::function<bool(int)>& remote) {
  AttentionTraffic t;
  if (layout.size() <= 1) return t;
  const int u = layout.ulysses(), r = layout.ring(), ring_rank = sp_rank / u;
  const int64_t width = batch * (dim / u) * element_size;  // bytes of one token's head slice, over the batch
  const auto across = [&](int peer) { return remote && remote(peer); };
  if (u > 1) {
    // To each peer j: forward q, k, v of this rank's tokens (their heads) and the output of
    // j's tokens (this rank's heads); backward the reverse.
    const int64_t lc = layout.count(sp_rank);
    for (int i = 0; i < u; ++i) {
      const int peer = ring_rank * u + i;
      if (peer == sp_rank) continue;
      const int64_t theirs = layout.count(peer);
      t.all_to_all_forward += (3 * lc + theirs) * width;
      t.all_to_all_backward += (lc + 3 * theirs) * width;
      if (across(peer)) {
        t.all_to_all_forward_internode += (3 * lc + theirs) * width;
        t.all_to_all_backward_internode += (lc + 3 * theirs) * width;
      }
    }
  }
  if (r > 1) {
    // Step s holds (and passes on to the next ring rank) the key/value block of ring rank
    // (me - s) mod R.
    auto block = [&](int s) { return 2 * (width / element_size) * layout.ring_share((ring_rank - s + r) % r).size(0); };
    for (int s = 0; s + 1 < r; ++s) {
      t.ring_forward += block(s) * element_size;
      t.ring_backward += block(s) * element_size;
    }
    for (int s = 0; s < r; ++s) t.ring_backward += block(s) * 4;  // dK/dV accumulators, fp32
    if (across((ring_rank + 1) % r * u + sp_rank % u)) {
      t.ring_forward_internode = t.ring_forward;
      t.ring_backward_internode = t.ring_backward;
    }
  }
  return t;
}

}  // namespace reel
