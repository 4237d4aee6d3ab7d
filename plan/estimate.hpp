// What one layout of a training job costs on a cluster: per-device memory, the bytes
// every collective of a step sends, and the step's time, from the model's shapes and the
// cluster's figures. Nothing is allocated or run.
//
// The bytes follow what reel sends, call for call (dist/traffic.hpp counts the same
// bytes at run time; the plan test compares them exactly):
//   FSDP (parallel/fsdp.hpp): each block is gathered once per micro-batch in forward and,
//     with reshard_after_forward, again in backward; each unit is reduce-scattered (in
//     reduce_dtype) once per micro-batch with sharded gradient accumulation, once per step
//     with unsharded (the root then stays pinned: gathered once per step, else once per
//     micro-batch); an all-reduce over the HSDP replicas once per step.
//   Sequence parallelism: parallel/sequence/layout.hpp's attention_traffic per block and
//     micro-batch, the forward part again for each recomputed block.
//   Every step: the loss all-reduce (3 doubles, world) and the gradient-norm all-reduce
//     (1 double, shard group).
// Memory: the shards and AdamW state (exact), the gathered units and unreduced
// gradients as parallel/fsdp.cpp holds them (none on a shard group of one rank, which
// views its shard), activations from a measured per-token figure.
// Time: compute is the step's exact FLOPs (recomputation included) over the device's
// peak x efficiency. Communication is bytes over the group's bandwidth (NVLink inside a
// node, the NIC across nodes) plus a latency per ring step. What reel overlaps is
// overlapped: prefetched all-gathers hide behind the previous block's compute, ring
// key/value passes behind attention; with async_reduce a block's reduce-scatter behind the
// next block's backward (less the shard link's time on that backward's prefetch); HSDP
// all-reduces and Ulysses all-to-alls block the step and are added whole.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "reel/plan/cluster.hpp"
#include "reel/train/config.hpp"

namespace reel {

// The FSDP units' sizes, from the model's structure (built deferred: no parameter memory).
struct ModelShape {
  int64_t root = 0;   // parameters of the root unit (everything outside the blocks)
  int64_t block = 0;  // parameters of one block
  int64_t depth = 0;
  int64_t largest = 0;  // elements of the largest single parameter
  int64_t parameters() const { return root + depth * block; }
  static ModelShape of(const ModelConfig& model);
};

struct Estimate {
  TrainConfig config;  // the layout: mesh, parallel and data.micro_batches set
  int world = 1;
  bool fits = false;
  std::string reason;  // why it does not fit (memory, or a split that cannot run)

  // Per device, bytes.
  double persistent = 0;   // fp32 master + gradient shards, AdamW moments and decay mask: 20 bytes per element
  double gathered = 0;     // units gathered in flight + the unreduced fp32 gradient buffers
  double activations = 0;  // what backward keeps for one micro-batch
  double buffers = 0;      // sequence-parallel send/receive buffers
  double reserve = 0;      // the cluster's reserve (runtime, allocator)
  double total() const { return persistent + gathered + activations + buffers + reserve; }

  // One optimizer step, seconds.
  double compute_s = 0;         // FLOPs (with recomputation) / (peak x efficiency)
  double gather_s = 0;          // every FSDP all-gather, whole
  double gather_exposed_s = 0;  // the part prefetch does not hide
  double reduce_s = 0;          // reduce-scatters + HSDP all-reduces, whole
  double reduce_exposed_s = 0;  // the part the backward does not hide (all of it without async_reduce)
  double sp_s = 0;              // sequence-parallel traffic, whole
  double sp_exposed_s = 0;      // the part that blocks
  double small_s = 0;           // the loss and gradient-norm all-reduces
  double step_s = 0;
  double tokens_per_s = 0;
  double mfu = 0;  // model FLOPs / (step time x devices x peak)

  // Rank 0's bytes per step, "group.call" as dist/traffic.hpp counts them.
  std::map<std::string, int64_t> comm_bytes;
  // Of them, the bytes rank 0 sends to another node (dist/traffic.hpp's split), with
  // ranks placed node by node, cluster.gpus_per_node to a node.
  std::map<std::string, int64_t> comm_bytes_internode;
};

// "12.3 GB" / "456.7 MB" (decimal units, as GPU memory is quoted).
std::string gb(double bytes);

// config: resolved, with the layout to estimate (mesh.dp/sp/shard_group, parallel.*
// with the Ulysses degree in parallel.sequence, data.micro_batches). Throws std::invalid_argument for a layout that
// cannot run (the reason as reel itself would give it).
Estimate estimate(const TrainConfig& config, int world, const Cluster& cluster, const ModelShape& shape);

}  // namespace reel
