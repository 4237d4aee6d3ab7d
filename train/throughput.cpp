#include "train/throughput.hpp"

#include <algorithm>
#include <chrono>

#include "model/flow.hpp"

namespace reel {

StepFlops step_flops(const ModelConfig& cfg, int64_t global_batch, const ActivationCheckpointConfig& ac) {
  StepFlops f;
  f.model = training_step_flops(cfg, global_batch);
  f.hardware = f.model + double(ac.recomputed_blocks(cfg.depth)) * block_forward_flops(cfg, global_batch);
  return f;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Best rate of `trials` timed runs of x W^T, each at least min_seconds long.
double best_gemm_rate(int64_t rows, int64_t in, int64_t out, at::ScalarType dtype, int trials, double min_seconds) {
  auto x = at::randn({rows, in}).to(dtype), w = at::randn({out, in}).to(dtype);
  for (int i = 0; i < 2; ++i) at::linear(x, w);  // warm-up: threads, caches, packing
  const double flops = 2.0 * rows * in * out;
  double best = 0;
  for (int t = 0; t < trials; ++t) {
    int64_t n = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      at::linear(x, w);
      ++n;
      elapsed = seconds_since(start);
    } while (elapsed < min_seconds);
    best = std::max(best, flops * double(n) / elapsed);
  }
  return best;
}

}  // namespace

PeakFlops peak_flops(const ModelConfig& cfg, int64_t rows, at::ScalarType dtype, const at::Device& device,
                     double stated) {
  if (stated > 0) return {stated, "run.peak_flops"};
  if (device.is_cuda()) {  // the published dense peaks of an H100/H200 SXM (state others with run.peak_flops)
    if (dtype == at::kBFloat16 || dtype == at::kHalf) return {989e12, "dense bf16/fp16 tensor cores of an H100/H200 SXM"};
    return {67e12, "fp32 (no TF32) of an H100/H200 SXM"};
  }
  rows = std::clamp<int64_t>(rows, 64, 4096);
  const int64_t d = cfg.dim, hidden = cfg.mlp_hidden(), fc1 = cfg.mlp == "swiglu" ? 2 * hidden : hidden;
  // The block's GEMMs, weighted by their FLOPs: total FLOPs over total best time.
  const int64_t shapes[3][2] = {{d, 3 * d}, {d, fc1}, {hidden, d}};
  double flops = 0, seconds = 0;
  for (const auto& s : shapes) {
    const double f = 2.0 * rows * s[0] * s[1];
    flops += f;
    seconds += f / best_gemm_rate(rows, s[0], s[1], dtype, 4, 0.08);
  }
  return {flops / seconds, "measured: best of 4 warmed trials of the model's GEMMs (" + std::to_string(rows) +
                               " rows), this rank's threads"};
}

}  // namespace reel
