// FSDP (ZeRO-3) from scratch over dist/'s Communicator.
//
// Units: each of the model's blocks, plus a root unit holding every other parameter
// (embeddings, conditioning, head): any Model (model/model.hpp). A unit's parameters are one flat buffer padded to a
// multiple of the shard count; each rank keeps its shard in fp32 (the master copy), with
// a gradient shard of the same size. The module's parameters are views into the unit's
// gathered buffer, whose storage exists only while the unit is gathered.
//
// Materialisation: the model may be built deferred (model/layers.hpp: no parameter
// memory). Each unit allocates only this rank's shard and initialises it from
// (seed, parameter name), one parameter at a time: construction never holds more than
// the shards plus one unit. In a step, what is gathered beyond the shards is bounded by
// the units in flight (max_gathered; all of them with reshard_after_forward off).
//
// Forward: all-gather the unit's shards just before it runs (all-gather forward); free
// the gathered storage after it runs when reshard_after_forward (ZeRO-3), or keep it
// until backward (ZeRO-2 style). Backward: a hook on the unit's output re-gathers before
// the unit's backward runs; hooks on its parameters collect their gradients into a flat
// buffer; the last one reduce-scatters it with SUM into the gradient shard
// (reduce-scatter backward) and frees both buffers. The loss is already divided by the
// global target count, so a SUM gives the global mean gradient whatever the split.
// With asynchronous reduction (async_reduce) that reduce-scatter is only issued there:
// the units before it run their backward while it is in flight; it is finished (waited,
// added into the gradient shard) when the bytes in flight pass reduce_in_flight_mb, or
// at the latest in finish_backward(), before the optimizer. Under HSDP a unit's
// reduce-scatter is waited when the next unit's backward completes, and the all-reduce of
// its shard over the replicas issued there, in flight behind the following units'
// backward: every rank issues the two communicators' calls in the same order, and they
// share one progress (dist/communicator.hpp: share_progress).
// Gradient accumulation (grad_accumulation): sharded (the default) reduce-scatters every
// micro-batch's gradients and adds them into the fp32 gradient shard, so that a rank holds
// 1/N of the gradients whatever the number of micro-batches; unsharded only adds into
// each unit's flat gradient buffer (the whole unit, fp32, kept across micro-batches) and
// reduce-scatters once, on the last micro-batch: fewer bytes, more memory. Either way
// HSDP's all-reduce over the replicas runs once per step, on the last micro-batch, over
// the accumulated gradient shard (in the reduce dtype).
// The root unit is gathered at the start of forward and pinned until its gradients are
// reduced (it runs both first and last); unsharded accumulation keeps it pinned across
// micro-batches, sharded gathers it again for each.
// A shard group of one rank (one process, or HSDP with shard_group 1) skips the copies
// a gather and a reduction of one rank would make: with fp32 parameters (param_dtype
// float32, CPU's default) they view the shard directly; with an fp32 reduce_dtype and no
// replicas the gradients add straight into the gradient shard (fsdp_aliases).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "reel/dist/communicator.hpp"
#include "reel/dist/enum_names.hpp"
#include "reel/model/model.hpp"
#include "reel/parallel/shard_layout.hpp"

namespace reel {

// A switch that is on, off, or chosen by the device: auto is on for GPUs, off for CPU ranks.
enum class AutoSwitch { kAuto, kOn, kOff };
constexpr EnumNames<AutoSwitch, 3> enum_names(AutoSwitch) {
  return {{{AutoSwitch::kAuto, "auto"}, {AutoSwitch::kOn, "true"}, {AutoSwitch::kOff, "false"}}};
}
// Gradient accumulation over micro-batches (FsdpConfig::grad_accumulation).
enum class GradAccumulation { kSharded, kUnsharded };
constexpr EnumNames<GradAccumulation, 2> enum_names(GradAccumulation) {
  return {{{GradAccumulation::kSharded, "sharded"}, {GradAccumulation::kUnsharded, "unsharded"}}};
}
// A dtype as configured: auto (resolved by its owner: FsdpConfig) or one of three.
enum class DtypeChoice { kAuto, kFloat32, kBFloat16, kFloat16 };
constexpr EnumNames<DtypeChoice, 4> enum_names(DtypeChoice) {
  return {{{DtypeChoice::kAuto, "auto"},
           {DtypeChoice::kFloat32, "float32"},
           {DtypeChoice::kBFloat16, "bfloat16"},
           {DtypeChoice::kFloat16, "float16"}}};
}
// The dtype chosen; `automatic` for auto.
at::ScalarType scalar_type(DtypeChoice choice, at::ScalarType automatic);

struct FsdpConfig {
  bool reshard_after_forward = true;
  // Start the next unit's all-gather while the current one computes: auto (on GPUs,
  // where NCCL runs on its own stream; off on CPU ranks, which have no idle core to
  // overlap into: on 2 cores it cost 2%, docs/bench-train.md) | true | false.
  AutoSwitch prefetch = AutoSwitch::kAuto;
  int max_gathered = 2;  // bound on block units gathered or being gathered at once (memory)
  // Mixed precision: the dtype parameters are gathered (and computed) in, and the dtype
  // gradients are reduce-scattered in. The shards and the optimizer stay fp32.
  DtypeChoice param_dtype = DtypeChoice::kAuto;      // auto: bfloat16 on GPU, float32 on CPU
  DtypeChoice reduce_dtype = DtypeChoice::kFloat32;  // auto: float32
  // Issue each unit's gradient reduce-scatter when its backward completes and wait for it
  // only when needed, so the earlier units' backward overlaps it: auto (on GPUs, like
  // prefetch: CPU ranks have no idle core to overlap into) | true | false.
  AutoSwitch async_reduce = AutoSwitch::kAuto;
  // Bound on the unreduced gradient buffers in flight (MiB, in the reduce dtype); past
  // it the oldest reduction is finished first. One unit is always allowed.
  int64_t reduce_in_flight_mb = 512;
  // Gradient accumulation over micro-batches: sharded (reduce-scatter each micro-batch
  // into the gradient shard: 1/N of the gradients held) | unsharded (keep every unit's
  // whole gradient until the last micro-batch, reduce once: 1/M of the reduce traffic).
  GradAccumulation grad_accumulation = GradAccumulation::kSharded;

  void validate() const;  // throws std::invalid_argument naming the option
  at::ScalarType param_type(const at::Device& device) const;
  bool prefetches(const at::Device& device) const;     // prefetch resolved for the device
  bool reduces_async(const at::Device& device) const;  // async_reduce resolved for the device
  at::ScalarType reduce_type() const { return scalar_type(reduce_dtype, at::kFloat); }
  bool accumulates_sharded() const { return grad_accumulation == GradAccumulation::kSharded; }
};

// FSDP on a shard group of one rank (see above): the parameters view the shard when
// they are computed in fp32, and the gradients add straight into the gradient shard when
// they are reduced in fp32 and there are no replicas. The one rule FsdpUnit follows and
// reel plan's memory estimate counts (plan/estimate.cpp).
struct FsdpAliases {
  bool params = false, grads = false;
};
FsdpAliases fsdp_aliases(int shard_ranks, at::ScalarType param_dtype, at::ScalarType reduce_dtype, int replicas);

// The parameter whose gradient autograd stores in .grad right after FSDP's hook has
// taken it: cleared when the next gradient arrives, so that at most one parameter's
// .grad exists at a time (the reduced gradient lives in the shards, never in .grad).
struct GradSink {
  at::Tensor lingering;
  void clear();
};

class FsdpUnit;

// The units whose gradient reduction is in flight (reduce-scatter, then HSDP's
// all-reduce), oldest first, with a bound on the buffers they hold: before a reduction is
// issued, reserve() moves the HSDP reductions on to their all-reduce, then finishes the
// oldest until it fits (a unit alone always does).
class ReduceQueue {
 public:
  explicit ReduceQueue(int64_t max_bytes) : max_bytes_(max_bytes) {}
  void reserve(int64_t bytes);  // the HSDP step above, then the oldest until `bytes` more fit
  void push(FsdpUnit& unit);    // a reduction just issued (unit.reducing() is true)
  void drain();                 // finishes every reduction in flight, oldest first
  bool empty() const { return units_.empty(); }
  // Test hook: a line per event ("issue block3", "finish block3", "backward block2"), in
  // the order they happened on this rank, while recording.
  void record(bool on) { recording_ = on, events_.clear(); }
  void note(const std::string& event) {
    if (recording_) events_.push_back(event);
  }
  const std::vector<std::string>& events() const { return events_; }

 private:
  int64_t bytes() const;  // the buffers the units in flight hold now
  std::vector<FsdpUnit*> units_;
  int64_t max_bytes_;
  bool recording_ = false;
  std::vector<std::string> events_;
};

class FsdpUnit {
 public:
  // params: the module's parameters of this unit, in layout order (materialised or not).
  // Allocates and initialises this rank's shard, one parameter at a time, with init(name,
  // value) (the model's initialisation from (seed, parameter name)).
  // replicas: for hybrid sharding (HSDP), the ranks holding the same shard (null: none);
  // gradients are reduce-scattered over comm, then all-reduced over replicas.
  // queue: records events and, with async, takes the reductions in flight (async false:
  // each is waited where it is issued).
  using InitFn = std::function<void(const std::string& name, at::Tensor& value)>;
  FsdpUnit(UnitLayout layout, std::vector<at::Tensor> params, Communicator& comm, Communicator* replicas,
           const InitFn& init, at::ScalarType param_dtype, at::ScalarType reduce_dtype, GradSink& sink,
           ReduceQueue& queue, bool async);
  // Removes the gradient hooks from the parameters (they point at this unit).
  ~FsdpUnit();
  FsdpUnit(const FsdpUnit&) = delete;
  FsdpUnit& operator=(const FsdpUnit&) = delete;

  void gather();        // all-gather the shards (or finish a prefetch); parameters hold full values
  void gather_async();  // start the all-gather without waiting (prefetch)
  // Free the gathered storage (parameters become empty views), unless pinned.
  void reshard();
  bool gathered() const { return gathered_; }
  bool pending() const { return pending_ != nullptr; }
  // Pinned: gathered, and reshard() leaves it so until the unit's gradients are reduced
  // (then it unpins and frees). The root unit is pinned for each forward with gradients.
  void pin();
  // Unpins and frees the gathered storage (after a forward without backward).
  void release();
  bool pinned() const { return pinned_; }
  // Whether the backward that completes this unit's gradients reduces them (true) or only
  // accumulates them locally (gradient accumulation, all but the last micro-batch).
  void set_reduce(bool reduce) { reduce_ = reduce; }
  bool reduces() const { return reduce_; }
  // Whether this backward's reduction also all-reduces the gradient shard over the HSDP
  // replicas (the last micro-batch of a step; nothing without replicas).
  void set_replicate(bool replicate) { replicate_ = replicate; }
  // Seconds the calling thread spent blocked in this unit's communication since the
  // last call (the exposed, not overlapped, part).
  double take_comm_seconds();
  // Called by each parameter's gradient hook.
  void add_gradient(size_t index, const at::Tensor& grad);
  // An asynchronous reduction of this unit is in flight (issued, not yet finished).
  bool reducing() const { return reducing_ != nullptr; }
  int64_t reducing_bytes() const;  // its buffers, 0 when none is in flight
  // Waits for the reduce-scatter in flight, if any (its buffers are freed), adds it into
  // the gradient shard and, when replicating (HSDP), starts the all-reduce of the shard.
  void wait_scatter();
  // Finishing its reduction also all-reduces the gradient shard over replicas (HSDP, on
  // the step's last micro-batch).
  bool replicates() const { return replicate_ && replicas_ && replicas_->size() > 1; }
  // Waits for the reduction in flight (wait_scatter(), then the replicas' all-reduce, if
  // any); the gradient shard is complete afterwards. Nothing when none is in flight.
  void finish_reduce();
  // The fp32 master values of the whole unit, [padded] (collective over comm): for
  // saving; the gathered compute buffer is left as it is.
  at::Tensor gather_master();

  const UnitLayout& layout() const { return layout_; }
  // Bytes held now beyond the shards: the gathered parameters, the unreduced gradient
  // buffer and a reduction's buffers in flight (0 between steps).
  int64_t transient_bytes() const;
  at::Tensor& shard() { return shard_; }            // [shard] fp32 master parameters
  at::Tensor& grad_shard() { return grad_shard_; }  // [shard] fp32 reduced gradients

 private:
  // Reduce-scatters the unit's gradient buffer (waiting here, or in flight with async).
  void reduce_gradients();
  // [shard] reduce dtype, summed over the shard group: adds it into the gradient shard
  // and, when replicating, sums the shard over the replicas (HSDP).
  void add_reduced(at::Tensor& reduced);
  // HSDP: all-reduces the gradient shard over the replicas in the reduce dtype (through
  // replica_wire_ unless fp32); async: returns its Work, else waits. land_replica() then
  // puts the sum into the gradient shard.
  WorkPtr replicate_shard(bool async);
  void land_replica();
  void free_gathered();

  UnitLayout layout_;
  std::vector<at::Tensor> params_;
  std::vector<unsigned> hooks_;  // each parameter's gradient hook
  GradSink& sink_;
  Communicator& comm_;
  Communicator* replicas_;
  at::ScalarType param_dtype_, reduce_dtype_;
  WorkPtr pending_;  // an all-gather in flight (prefetch)
  ReduceQueue& queue_;
  bool async_;
  WorkPtr reducing_;                     // a reduction in flight (async_reduce): its reduce-scatter
  bool scattered_ = false;               // ... already waited and added (wait_scatter)
  WorkPtr replicating_;                  // ... then HSDP's all-reduce of the gradient shard
  at::Tensor replica_wire_;              // [shard] that all-reduce's buffer in a 16-bit reduce dtype
  at::Tensor reduce_send_, reduce_out_;  // [padded], [shard] in the reduce dtype: its buffers
  at::Tensor shard_, grad_shard_;
  at::Tensor full_;       // [padded] gathered parameters; storage only while gathered
  at::Tensor full_grad_;  // [padded] gradients of this rank's micro-batches
  size_t grads_seen_ = 0;
  bool gathered_ = false, pinned_ = false, reduce_ = true, replicate_ = true;
  // One rank holds the whole unit (a shard group of one, fp32 compute): the gathered
  // buffer is the shard itself and gradients accumulate straight into the gradient
  // shard, without the copies a gather and a reduction of one rank would make.
  bool alias_params_ = false, alias_grads_ = false;
  double comm_seconds_ = 0;
};

class FsdpModel {
 public:
  // Shards model's parameters over comm (every rank of comm holds one shard); with
  // replicas (HSDP), each shard is also held by every rank of `replicas`. Installs its
  // block runner around the model's current one (e.g. activation checkpointing).
  // Initialises the shards with model.init_parameter from seed.
  FsdpModel(Model& model, Communicator& comm, const FsdpConfig& config, uint64_t seed,
            Communicator* replicas = nullptr);
  // Puts the model's previous block runner back (the model's parameters stay views of
  // freed buffers: the model is unusable without its FSDP).
  ~FsdpModel();
  FsdpModel(const FsdpModel&) = delete;
  FsdpModel& operator=(const FsdpModel&) = delete;

  // Runs model_forward (a call of the model's own forward, whatever its inputs) under
  // FSDP: the root unit gathered around it, each block's unit as the block runs. Without
  // gradients (evaluation) every unit is freed again by the time it returns.
  //   fsdp.forward([&] { return model->forward(tokens, t, actions, index); });
  at::Tensor forward(const std::function<at::Tensor()>& model_forward);
  // After loss.backward(): finishes the reductions still in flight (the gradient shards
  // are complete afterwards), checks that every unit's gradients were collected (and,
  // when reducing, reduced), and clears the parameters' own .grad.
  void finish_backward();
  ReduceQueue& reduce_queue() { return queue_; }
  // Before each micro-batch's forward: which of the step's micro-batches it is, so that
  // gradients are reduced as grad_accumulation says (every micro-batch, or the last).
  void set_micro_batch(int64_t index, int64_t count);

  std::vector<std::unique_ptr<FsdpUnit>>& units() { return units_; }
  std::vector<at::Tensor> shards();
  std::vector<at::Tensor> grad_shards();
  void zero_grad_shards();
  // Collective over comm: calls fn(name, value) for every parameter with its full fp32
  // value, one unit at a time (only one unit is ever whole here), on every rank.
  void for_each_full_parameter(const std::function<void(const std::string&, const at::Tensor&)>& fn);
  // Every parameter's full value (collective). Holds the whole model: for tests only.
  std::map<std::string, at::Tensor> full_parameters();
  // Bytes of persistent per-rank state: parameter + gradient shards (fp32).
  int64_t shard_bytes() const;
  // Exposed communication seconds of all units since the last call.
  double take_comm_seconds();

 private:
  at::Tensor run_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx);
  // Starts gathering the unit of block i if it exists and the in-flight bound allows.
  void prefetch(int64_t block);

  Model& model_;
  FsdpConfig config_;
  bool prefetch_ = false;  // config_.prefetch for this model's device
  Model::BlockRunner inner_;
  GradSink sink_;
  ReduceQueue queue_;                             // before units_: they point at it
  std::vector<std::unique_ptr<FsdpUnit>> units_;  // root first, then one per block
};

}  // namespace reel
