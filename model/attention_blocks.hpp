// The maths of blockwise attention, with memory linear in the sequence length (no
// communication: parallel/sequence/ring.cpp moves blocks between ranks; attention.cpp
// uses the same maths on one rank for long sequences).
//
// A query block attends over key/value blocks one at a time; each block gives a partial
// output normalised over that block and its log-sum-exp, and partial results merge
// exactly:
//   lse = log(exp(lse_a) + exp(lse_b)),  out = out_a exp(lse_a - lse) + out_b exp(lse_b - lse).
// A query row that sees no key of a block (frame-causal masking) gets lse -inf and a zero
// output from it, which the merge ignores.
//
// Backward of the merged result, given the final out and lse (what FlashAttention's
// backward does, block by block): with D = rowsum(dout * out) and, per key block j,
//   P_j = exp(S_j - lse),  dV_j = P_j^T dout,  dS_j = P_j * (dout V_j^T - D),
//   dQ += dS_j K_j * scale,  dK_j = dS_j^T Q * scale.
// It needs no gradient through the log-sum-exp: the final lse is an input, not a result.
// Everything is computed in at least fp32 (16-bit inputs are widened). Queries and keys
// are tiled (runs of consecutive frame-groups, at most kKeyChunk tokens, and fewer when
// B x H is large: a tile's scores hold at most kTileElements), so the transient memory
// is bounded whatever the length and head count, and under frame-causal masking a
// tile pair whose keys all lie in later groups than its queries is skipped, not computed
// and masked: a zigzag ring share (an early and a late piece) does half the work of a
// block on the pairs that are hidden.
//
// Fused, mask-free (where LibTorch has a kernel for the device, dtype and head size:
// fused_kernel_available()). With the tokens ordered by frame-group, the keys a query of
// group g sees are a prefix of each sorted piece of the keys (those of groups <= g, found
// by binary search on host copies of the groups). Queries are cut into runs of one
// frame-group (neighbouring runs that see the same keys are joined); each run is one call
// of LibTorch's fused kernel without mask and without its causal flag on (its queries,
// that prefix of k and v): no [Lq, Lk] tensor exists anywhere, memory is linear in the
// length, and hidden keys cost nothing. A contiguous piece of the clip is one sorted
// piece, a zigzag ring share (an early piece, then a late one) too; a hybrid ring share
// (zigzag pieces of several Ulysses ranks, one after the other) is a few sorted pieces,
// whose partial results merge through their log-sum-exp. Groups cut into more than
// kMaxSortedPieces pieces go to the tiles above. The kernels accumulate in fp32 and
// return 16-bit outputs for 16-bit inputs (widened before partial results merge).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

namespace reel {

constexpr int64_t kKeyChunk = 512;                   // longest tile (tokens); longer keys go blockwise
constexpr int64_t kTileElements = int64_t{1} << 18;  // B x H x tile x tile at most (1 MiB fp32)
constexpr int64_t kMaxSortedPieces = 8;              // more pieces of non-decreasing groups: tiles, not fused runs

struct AttentionBlock {
  at::Tensor q;        // [B, H, Lq, hd]
  at::Tensor k, v;     // [B, H, Lk, hd]
  at::Tensor q_group;  // [Lq] int64 frame-group of each query
  at::Tensor k_group;  // [Lk] int64 frame-group of each key
  bool causal = false;
};

struct PartialAttention {
  at::Tensor out;  // [B, H, Lq, hd] fp32 (at least), normalised over what was seen
  at::Tensor lse;  // [B, H, Lq] fp32 (at least); -inf for rows that saw nothing
};

// Whether any query (groups q_group [Lq]) sees any key (k_group [Lk]) of a block; false:
// skip it. Pass host tensors: this reads their values.
bool block_visible(const at::Tensor& q_group, const at::Tensor& k_group, bool causal);

// Keys [start, start + len) of a block.
struct KeySpan {
  int64_t start, len;
};
// Queries [start, start + len) that all see the same keys: a prefix of each sorted piece
// of the keys (no span: they see nothing; output 0, lse -inf).
struct QueryRun {
  int64_t start, len;
  std::vector<KeySpan> keys;
};

// The fused calls for these groups (one run over every key when not causal); nullopt when
// causal and either group list is cut into more than kMaxSortedPieces non-decreasing
// pieces. Host or device groups (a device copy is read back).
std::optional<std::vector<QueryRun>> query_runs(const at::Tensor& q_group, const at::Tensor& k_group, bool causal);

// Whether LibTorch has a fused kernel for q's device, dtype and head size: CPU (fp32,
// fp64, bf16, fp16: FlashAttention for CPU); CUDA bf16/fp16 (FlashAttention-2, head size
// a multiple of 8 up to 256) and fp32 (memory-efficient attention).
bool fused_kernel_available(const at::Tensor& q);

// Whether block_forward and block_backward take the fused runs for this block (`runs`
// set to them) or the tiles.
bool use_fused(const AttentionBlock& b, std::vector<QueryRun>& runs);

// Score elements (query x key pairs, per clip and head) block_forward computes for this
// block: the visible pairs of the fused runs, or the tile pairs not skipped. The work of
// a block, for measuring load balance (b.q gives dtype, device, B x H; its values are not read).
int64_t block_work(const AttentionBlock& b);

// The fused runs' forward: out [B, H, Lq, hd] in `out_dtype`, lse [B, H, Lq] fp32 (fp64
// for fp64 inputs; -inf for runs that see nothing).
PartialAttention fused_forward(const AttentionBlock& b, const std::vector<QueryRun>& runs, at::ScalarType out_dtype);

struct BlockGrads {
  at::Tensor dq;      // [B, H, Lq, hd] fp32 (at least): this key block's contribution to dQ
  at::Tensor dk, dv;  // [B, H, Lk, hd] fp32 (at least): the gradients of this block's keys and values
};

// The fused runs' backward given the final (merged over every block) out [B, H, Lq, hd]
// in q's dtype and lse: the kernel computes D = rowsum(dout * out) itself and
// P = exp(S - lse), so each block gives exactly its share. dlse [B, H, Lq] (optional): a
// gradient of the lse as well (dS += P * dlse).
BlockGrads fused_backward(const AttentionBlock& b, const std::vector<QueryRun>& runs, const at::Tensor& dout,
                          const at::Tensor& out, const at::Tensor& lse, const at::Tensor& dlse = at::Tensor());

// One block's partial attention.
PartialAttention block_forward(const AttentionBlock& b);

// Merges `part` into `acc` (acc undefined: becomes part).
void merge_partial(PartialAttention& acc, const PartialAttention& part);

// Exact attention over a whole block, memory O(kTileElements) beyond inputs and output,
// as one autograd function: forward runs block_forward and saves only q, k, v, out and
// lse; backward recomputes each key chunk's scores (block_backward). Returns out
// [B, H, Lq, hd] in q's dtype. What attention() falls back to for long sequences.
at::Tensor blockwise_attention(const AttentionBlock& b);

// dout [B, H, Lq, hd]; out [B, H, Lq, hd] (q's dtype) and lse [B, H, Lq]: the final
// (merged over every block) forward results.
BlockGrads block_backward(const AttentionBlock& b, const at::Tensor& dout, const at::Tensor& out,
                          const at::Tensor& lse);
// D = rowsum(dout * out) in fp32 (at least): [B, H, Lq].
at::Tensor softmax_rowsum(const at::Tensor& dout, const at::Tensor& out);

}  // namespace reel
