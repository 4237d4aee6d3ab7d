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
  at::Tensor q;  // [B, H, Lq, head_dim]
  at::Tensor k;  // [B, H, Lk, head_dim]
  at::Tensor v;  // [B, H, Lk, head_dim]
  // On the host (their values choose the fused calls; device copies are read back).
  at::Tensor q_group;   // [Lq] int64 frame-group of each query token
  at::Tensor k_group;   // [Lk] int64 frame-group of each key token
  bool causal = false;  // a query sees keys of its own and earlier frame-groups
};

// Fused kernels without a mask (model/attention_blocks.hpp, "Fused, mask-free"): the
// frame-causal mask becomes one call per run of queries over the prefix of keys they see,
// so memory is linear in the length. On CUDA and on CPU, for every length (measured on
// CPU: attention.cpp). Both out and lse are differentiable. Without a fused kernel for the
// dtype or head size (fp64 on CUDA), or with groups in too many unordered pieces
// (query_runs), the explicit reference for up to kKeyChunk keys on CPU, otherwise
// blockwise attention (memory linear in the length; lse not returned).
AttentionResult attention(const AttentionInputs& in);

// Explicit scores [B, H, Lq, Lk] (and an [Lq, Lk] bias when causal), differentiable through
// autograd: the reference the fused and blockwise forms are tested against.
AttentionResult reference_attention(const AttentionInputs& in);

// What the model calls for attention; sequence parallelism substitutes its own.
using AttentionFn = std::function<AttentionResult(const AttentionInputs&)>;

}  // namespace reel
