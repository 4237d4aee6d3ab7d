// FSDP (ZeRO-3) from scratch over dist/'s Communicator.
//
// Units: each transformer block, plus a root unit holding every other parameter
// (embeddings, conditioning, head). A unit's parameters are one flat buffer padded to a
// multiple of the shard count; each rank keeps its shard in fp32 (the master copy), with
// a gradient shard of the same size. The module's parameters are views into the unit's
// gathered buffer, whose storage exists only while the unit is gathered.
//
// Forward: all-gather the unit's shards just before it runs (all-gather forward); free
// the gathered storage after it runs when reshard_after_forward (ZeRO-3), or keep it
// until backward (ZeRO-2 style). Backward: a hook on the unit's output re-gathers before
// the unit's backward runs; hooks on its parameters collect their gradients into a flat
// buffer; the last one reduce-scatters it with SUM into the gradient shard
// (reduce-scatter backward) and frees both buffers. The loss is already divided by the
// global target count, so a SUM gives the global mean gradient whatever the split.
// Gradient accumulation: with sync off, micro-batches only add into the flat gradient
// buffer; the last micro-batch (sync on) reduce-scatters once.
// The root unit is gathered at the start of forward and stays gathered until its
// gradients are reduced (it runs both first and last).
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "dist/communicator.hpp"
#include "model/world_model.hpp"
#include "parallel/shard_layout.hpp"

namespace reel {

struct FsdpConfig {
  bool reshard_after_forward = true;
  bool prefetch = true;  // start the next unit's all-gather while the current one computes
  int max_gathered = 2;  // bound on block units gathered or being gathered at once (memory)
  // Mixed precision: the dtype parameters are gathered (and computed) in, and the dtype
  // gradients are reduce-scattered in. The shards and the optimizer stay fp32.
  at::ScalarType param_dtype = at::kFloat;
  at::ScalarType reduce_dtype = at::kFloat;
};
// "float32" | "bfloat16" | "float16"; throws std::invalid_argument otherwise.
at::ScalarType parse_dtype(const std::string& name);

class FsdpUnit {
 public:
  // params: the module's parameters of this unit, in layout order. Initialises the shard
  // from (seed, parameter name) — one unit at a time, never the whole model.
  // replicas: for hybrid sharding (HSDP), the ranks holding the same shard (null: none);
  // gradients are reduce-scattered over comm, then all-reduced over replicas.
  FsdpUnit(UnitLayout layout, std::vector<at::Tensor> params, Communicator& comm, Communicator* replicas,
           uint64_t seed, const FsdpConfig& config = {});

  void gather();        // all-gather the shards (or finish a prefetch); parameters hold full values
  void gather_async();  // start the all-gather without waiting (prefetch)
  void reshard();       // free the gathered storage (parameters become empty views)
  bool gathered() const { return gathered_; }
  bool pending() const { return pending_ != nullptr; }
  // Seconds the calling thread spent blocked in this unit's communication since the
  // last call (the exposed, not overlapped, part).
  double take_comm_seconds();
  // Called by each parameter's gradient hook.
  void add_gradient(size_t index, const at::Tensor& grad);

  const UnitLayout& layout() const { return layout_; }
  at::Tensor& shard() { return shard_; }            // [shard] fp32 master parameters
  at::Tensor& grad_shard() { return grad_shard_; }  // [shard] fp32 reduced gradients
  bool sync = true;          // false: accumulate micro-batch gradients without communication
  bool keep_gathered = false;  // root unit: stay gathered until gradients are reduced

 private:
  void reduce_gradients();

  UnitLayout layout_;
  std::vector<at::Tensor> params_;
  Communicator& comm_;
  Communicator* replicas_;
  at::ScalarType param_dtype_, reduce_dtype_;
  WorkPtr pending_;  // an all-gather in flight (prefetch)
  at::Tensor shard_, grad_shard_;
  at::Tensor full_;       // [padded] gathered parameters; storage freed when resharded
  at::Tensor full_grad_;  // [padded] gradients of this rank's micro-batches
  size_t grads_seen_ = 0;
  bool gathered_ = false;
  double comm_seconds_ = 0;
};

class FsdpModel {
 public:
  // Shards model's parameters over comm (every rank of comm holds one shard); with
  // replicas (HSDP), each shard is also held by every rank of `replicas`. Installs its
  // block runner around the model's current one (e.g. activation checkpointing).
  FsdpModel(WorldModelImpl& model, Communicator& comm, FsdpConfig config, uint64_t seed,
            Communicator* replicas = nullptr);

  // As WorldModelImpl::forward; gathers units as they run.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& t, const at::Tensor& actions, int64_t offset = 0);
  // After loss.backward(): checks that every unit's gradients were collected (and, when
  // syncing, reduced), and clears the parameters' own .grad.
  void finish_backward();
  // sync=false for all but the last micro-batch of a step.
  void set_sync(bool sync);

  std::vector<std::unique_ptr<FsdpUnit>>& units() { return units_; }
  std::vector<at::Tensor> shards();
  std::vector<at::Tensor> grad_shards();
  void zero_grad_shards();
  // Every parameter's full value (collective: all-gathers every unit). For tests.
  std::map<std::string, at::Tensor> full_parameters();
  // Bytes of persistent per-rank state: parameter + gradient shards (fp32).
  int64_t shard_bytes() const;
  // Exposed communication seconds of all units since the last call.
  double take_comm_seconds();

 private:
  at::Tensor run_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx);
  // Starts gathering the unit of block i if it exists and the in-flight bound allows.
  void prefetch(int64_t block);

  WorldModelImpl& model_;
  FsdpConfig config_;
  WorldModelImpl::BlockRunner inner_;
  std::vector<std::unique_ptr<FsdpUnit>> units_;  // root first, then one per block
};

}  // namespace reel
