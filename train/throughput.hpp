// Throughput accounting: the FLOPs of a training step and the peak they are measured
// against.
//
// MFU counts model FLOPs only (forward + backward = 3 x forward, exact per matmul);
// HFU (hardware FLOP utilisation) adds what activation checkpointing recomputes (one
// more forward of each checkpointed block), so MFU never credits recomputation.
//
// The CPU peak is a property of the host, not of a rank under whatever load there is at
// start: it is measured once per host and GEMM configuration (by one process: the host's
// cores x the best rate of one thread, train/throughput.cpp says why) and recorded in a
// small cache file that later runs read, so two runs of one configuration on one machine
// divide by the same figure and their MFU compares. A figure measured by every rank at
// each start, under whatever load there was, varied 9 to 169 GFLOP/s per rank.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "reel/model/config.hpp"
#include "reel/parallel/activation_checkpoint.hpp"

namespace reel {

class ProcessMesh;
class ModelSpec;

struct StepFlops {
  double model = 0;     // forward + backward of the global batch
  double hardware = 0;  // model + recomputation
};
// The family's FLOPs (train/model_spec.hpp) for a step of global_batch samples.
StepFlops step_flops(const ModelSpec& spec, const ModelConfig& cfg, int64_t global_batch,
                     const ActivationCheckpointConfig& ac);

struct PeakFlops {
  double per_rank = 0;                // FLOP/s of this rank
  double world = 0;                   // FLOP/s of all ranks together (the sum of their per_rank)
  std::string source;                 // how it was obtained, for the log
  std::vector<std::string> warnings;  // a cache that could not be read or written
};

// The peak FLOP/s that MFU divides by. Collective over mesh.world() (every rank calls it
// at the same point; on CPU it starts with a barrier).
// - `stated` > 0: that, per rank.
// - GPU: the published dense figure of an H100/H200 SXM for `dtype` (bf16/fp16: 989
//   TFLOP/s; fp32: 67), per rank.
// - CPU: each node's first rank reads its host's peak from the cache (cpu_peak_cache_path)
//   or measures it there and records it, while the node's other ranks sleep; each rank's
//   share is the host's peak / the ranks on its node (they share the cores). Nodes may
//   differ: each one's first rank reads or measures its own host.
// `rows` is a rank's GEMM row count (micro-batch tokens); the measured shapes are rows x
// dim through the block's qkv, fc1 and fc2.
PeakFlops peak_flops(const ProcessMesh& mesh, const ModelConfig& cfg, int64_t rows, at::ScalarType dtype,
                     const at::Device& device, double stated);

// --- The per-host cache (exposed for tests) ---

// $REEL_CPU_PEAK_CACHE when set, else ${XDG_CACHE_HOME:-$HOME/.cache}/reel/cpu_peak.ini.
std::string cpu_peak_cache_path();

// What determines a host's GEMM peak: "cpu=<model name>; cores=<cores>; dtype=<dtype>;
// gemm=<rows>x<in>x<out>,..." (one INI section name, so no ']' or line breaks).
std::string cpu_peak_key(const std::string& cpu_model, int cores, at::ScalarType dtype,
                         const std::vector<std::array<int64_t, 3>>& shapes);

struct HostPeak {
  double flops = 0;          // FLOP/s of the whole host
  std::string measured;      // when: "2026-12-06 09:41" (local time)
  int cores = 0;             // the cores it counts (one thread's rate x cores)
  bool from_cache = false;   // read from `path` (else measured now)
  std::string path;          // the cache file
  std::string not_recorded;  // measured now but not written to `path`: why ("" when written)
  std::vector<std::string> warnings;
};

// `key`'s entry of the cache file at `path` when there is one; else measure() (FLOP/s of
// the host's `cores` cores), recorded under `key` next to the file's other
// entries (written to a temporary file and renamed over it, so readers never see half a
// file). A file that cannot be read or holds lines that are not INI is a warning (the
// peak is measured again and the file rewritten); one that cannot be written is a
// warning and `not_recorded`. Never throws for the file.
HostPeak cached_host_peak(const std::string& path, const std::string& key, int cores,
                          const std::function<double()>& measure);

}  // namespace reel
