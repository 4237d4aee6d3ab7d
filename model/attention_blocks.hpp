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
#pragma once

#include <ATen/ATen.h>

namespace reel {

constexpr int64_t kKeyChunk = 512;            // longest tile (tokens); longer keys go blockwise
constexpr int64_t kTileElements = int64_t{1} << 18;  // B x H x tile x tile at most (1 MiB fp32)

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

// Score elements (query x key pairs, per clip and head) block_forward computes for these
// groups: the tile pairs not skipped. The work of a block, for measuring load balance.
// batch_heads: B x H (it sets the tile length).
int64_t block_work(const at::Tensor& q_group, const at::Tensor& k_group, bool causal, int64_t batch_heads);

// One block's partial attention.
PartialAttention block_forward(const AttentionBlock& b);

// Merges `part` into `acc` (acc undefined: becomes part).
void merge_partial(PartialAttention& acc, const PartialAttention& part);

// Exact attention over a whole block, memory O(kTileElements) beyond inputs and output,
// as one autograd function: forward runs block_forward and saves only q, k, v, out and
// lse; backward recomputes each key chunk's scores (block_backward). Returns out
// [B, H, Lq, hd] in q's dtype. What attention() uses on CPU for long sequences.
at::Tensor blockwise_attention(const AttentionBlock& b);

struct BlockGrads {
  at::Tensor dq;      // [B, H, Lq, hd] fp32: this key block's contribution to dQ
  at::Tensor dk, dv;  // [B, H, Lk, hd] fp32: the gradients of this block's keys and values
};

// dout [B, H, Lq, hd]; out, lse: the final (merged over every block) forward results;
// d = rowsum(dout * out) [B, H, Lq] (softmax_rowsum).
BlockGrads block_backward(const AttentionBlock& b, const at::Tensor& dout, const at::Tensor& lse,
                          const at::Tensor& d);
// D = rowsum(dout * out) in fp32 (at least): [B, H, Lq].
at::Tensor softmax_rowsum(const at::Tensor& dout, const at::Tensor& out);

}  // namespace reel
