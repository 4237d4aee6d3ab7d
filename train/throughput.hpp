// Throughput accounting: the FLOPs of a training step and the peak they are measured
// against.
//
// MFU counts model FLOPs only (forward + backward = 3 x forward, exact per matmul);
// HFU (hardware FLOP utilisation) adds what activation checkpointing recomputes (one
// more forward of each checkpointed block), so MFU never credits recomputation.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "model/config.hpp"
#include "parallel/activation_checkpoint.hpp"

namespace reel {

struct StepFlops {
  double model = 0;     // forward + backward of the global batch
  double hardware = 0;  // model + recomputation
};
StepFlops step_flops(const ModelConfig& cfg, int64_t global_batch, const ActivationCheckpointConfig& ac);

struct PeakFlops {
  double per_rank = 0;  // FLOP/s
  std::string source;   // how it was obtained, for the log
};
// The peak FLOP/s of one rank: `stated` when > 0; on GPU the published dense figure of
// an H100/H200 SXM for `dtype` (bf16/fp16: 989 TFLOP/s; fp32: 67); on CPU measured now at the model's own GEMM shapes
// (rows x dim through qkv, fc1 and fc2) in `dtype`, warmed up, best of several timed
// trials (about a second in all). Every rank measures at the same moment, so ranks that
// share cores each see their share.
PeakFlops peak_flops(const ModelConfig& cfg, int64_t rows, at::ScalarType dtype, const at::Device& device,
                     double stated);

}  // namespace reel
