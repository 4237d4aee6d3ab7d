// A cluster as `reel plan` sees it: nodes of identical devices, the links between them,
// and what one device computes. Presets for the machines reel targets; every field can
// be overridden on the command line (launch/plan_cmd.cpp).
#pragma once

#include <string>

namespace reel {

struct Cluster {
  static constexpr int kMaxDevices = 1 << 20;  // what validate() accepts: a plan, not a simulation
  std::string name;
  bool gpu = true;        // false: CPU ranks (fp32 compute, ranks share the node's cores)
  int gpus_per_node = 8;  // devices (ranks) per node
  int nodes = 1;
  double memory_bytes = 0;  // per device, what a process may allocate
  double reserve_bytes =
      0;  // per device, taken before training starts (CUDA context, NCCL, allocator slack; the CPU process)
  double intra_bw = 0;       // bytes/s one device moves inside its node (bus bandwidth of a ring collective)
  double intra_latency = 0;  // s per ring step inside a node
  double inter_bw = 0;       // bytes/s one device moves across nodes (its NIC)
  double inter_latency = 0;  // s per ring step across nodes
  double peak_flops = 0;     // dense, in the compute dtype: per GPU; per node on CPU (its ranks share the cores)
  double efficiency = 0;     // fraction of peak the step's FLOPs run at (all kernels, not one GEMM)
  std::string notes;         // where the figures come from

  int devices() const { return gpus_per_node * nodes; }
  double device_flops() const { return gpu ? peak_flops : peak_flops / gpus_per_node; }  // one rank's peak
  void validate() const;  // throws std::invalid_argument naming the field
};

// "h100" | "h200" | "cpu"; throws std::invalid_argument listing them.
Cluster cluster_preset(const std::string& name);

}  // namespace reel
