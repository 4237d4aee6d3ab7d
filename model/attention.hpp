// Multi-head attention that also returns the log-sum-exp of each query row, so partial
// results over key blocks can be merged exactly (ring attention):
//   out = sum_j softmax_j(s) v_j,  lse = log sum_j exp(s_j),  s = q.k / sqrt(head_dim).
// Frame-causal masking is expressed through the frame-group index of every query and key
// token, so the same function serves any slice of the sequence.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace reel {

struct AttentionResult {
  at::Tensor out;  // [B, H, Lq, head_dim]
  at::Tensor lse;  // [B, H, Lq] float32 (float64 for float64 inputs)
};

struct AttentionInputs {
  at::Tensor q;        // [B, H, Lq, head_dim]
  at::Tensor k;        // [B, H, Lk, head_dim]
  at::Tensor v;        // [B, H, Lk, head_dim]
  at::Tensor q_group;  // [Lq] int64 frame-group of each query token
  at::Tensor k_group;  // [Lk] int64 frame-group of each key token
  bool causal = false;  // a query sees keys of its own and earlier frame-groups
};

// On CPU: explicit scores, differentiable through autograd (the reference), or, for more
// than kKeyChunk keys, the blockwise form (model/attention_blocks.hpp: memory linear in
// the length; lse not returned). On CUDA tensors it uses LibTorch's fused kernels, which
// return the lse.
AttentionResult attention(const AttentionInputs& in);

// What the model calls for attention; sequence parallelism substitutes its own.
using AttentionFn = std::function<AttentionResult(const AttentionInputs&)>;

}  // namespace reel
