#include "reel/plan/cluster.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "reel/dist/require.hpp"

namespace reel {

void Cluster::validate() const {
  const Require need{"cluster: "};
  need(gpus_per_node >= 1 && nodes >= 1, "gpus per node and nodes must be >= 1");
  need(int64_t(gpus_per_node) * nodes <= kMaxDevices, "at most " + std::to_string(kMaxDevices) + " devices, got " +
                                                          std::to_string(gpus_per_node) + " x " +
                                                          std::to_string(nodes));
  auto finite = [](double v) { return std::isfinite(v); };
  need(finite(memory_bytes) && finite(reserve_bytes) && finite(intra_bw) && finite(inter_bw) && finite(intra_latency) &&
           finite(inter_latency) && finite(peak_flops) && finite(efficiency),
       "every figure must be a finite number");
  need(memory_bytes > 0 && reserve_bytes >= 0 && reserve_bytes < memory_bytes,
       "memory per device must be > 0 and larger than the reserve");
  need(intra_bw > 0 && inter_bw > 0, "bandwidths must be > 0");
  need(intra_latency >= 0 && inter_latency >= 0, "latencies must be >= 0");
  need(peak_flops > 0, "peak FLOP/s must be > 0");
  need(efficiency > 0 && efficiency <= 1, "efficiency must be in (0, 1]");
}

Cluster cluster_preset(const std::string& name) {
  Cluster c;
  c.name = name;
  constexpr double GiB = 1024.0 * 1024 * 1024;
  if (name == "h100" || name == "h200") {
    // HGX nodes: 8 SXM GPUs on NVLink 4 (450 GB/s per direction per GPU; ring collectives
    // reach about 360 GB/s of bus bandwidth), one 400 Gb/s InfiniBand NDR NIC per GPU
    // (50 GB/s; about 45 reached). 989 TFLOP/s dense bf16. The efficiency is an assumption
    // until measured on the card (issue 12): a transformer step's kernels together at 55%.
    c.gpu = true;
    c.gpus_per_node = 8;
    c.memory_bytes = (name == "h100" ? 80e9 : 141e9);
    c.reserve_bytes = 3 * GiB;
    c.intra_bw = 360e9;
    c.intra_latency = 5e-6;
    c.inter_bw = 45e9;
    c.inter_latency = 10e-6;
    c.peak_flops = 989e12;
    c.efficiency = 0.55;
    c.notes = "HGX " + std::string(name == "h100" ? "H100 80 GB" : "H200 141 GB") +
              " SXM: NVLink 4 inside a node, 400 Gb/s InfiniBand per GPU across nodes; published peaks, "
              "efficiency assumed (not yet measured on a GPU)";
    return c;
  }
  if (name == "cpu") {
    // A node like reel's CI machine: 2 cores, 23 GiB, ranks in one node over shared
    // memory. Measured there: about 3 GB/s of bus bandwidth for MiB-sized collectives
    // (docs/benchmarks.md, collectives); 187 GFLOP/s of fp32 GEMM at the tiny model's shapes on both
    // cores, shared by the node's ranks; the tiny step at 1 rank runs at 35% of it
    // (docs/plan.md). Calibrated at 1 rank; every other layout is predicted.
    c.gpu = false;
    c.gpus_per_node = 2;
    c.memory_bytes = 23 * GiB / 2;
    c.reserve_bytes = 0;
    c.intra_bw = 3e9;
    c.intra_latency = 20e-6;
    c.inter_bw = 1e9;
    c.inter_latency = 50e-6;
    c.peak_flops = 187e9;
    c.efficiency = 0.35;
    c.notes = "a 2-core CPU node like reel's CI machine (ranks share its cores; figures measured there)";
    return c;
  }
  throw std::invalid_argument("unknown cluster preset '" + name + "' (expected h100, h200 or cpu)");
}

}  // namespace reel
