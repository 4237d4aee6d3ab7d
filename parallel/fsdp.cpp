#include "reel/parallel/fsdp.hpp"

#include <ATen/core/grad_mode.h>

#include <chrono>
#include <map>
#include <stdexcept>

#include "reel/dist/require.hpp"
#include "reel/dist/trace.hpp"

namespace reel {
namespace {

// Tracing a unit's backward (dist/trace.hpp: fsdp.backward), on the thread autograd runs
// it on. A block's span opens at its re-gather (or first gradient) and closes when its
// gradients are reduced, or earlier, when another block's opens or the root's closes
// (autograd may start the previous block before this one's last gradients arrive, and
// spans on one thread must nest). The root's opens at its first gradient (the head's).
struct OpenBackward {
  const UnitLayout* unit = nullptr;
  int64_t start = 0;
};
thread_local OpenBackward open_block, open_root;

void close_backward(OpenBackward& open) {
  if (!open.unit) return;
  trace::record("fsdp.backward", "fsdp", open.start, trace::now_ns(), "\"unit\":" + trace::quote(open.unit->name));
  open.unit = nullptr;
}
void open_backward(const UnitLayout& unit) {
  if (!trace::on()) return;
  OpenBackward& slot = unit.name == "root" ? open_root : open_block;
  if (slot.unit == &unit) return;
  close_backward(open_block);
  slot = {&unit, trace::now_ns()};
}
void end_backward(const UnitLayout& unit) {
  if (!open_block.unit && !open_root.unit) return;
  if (unit.name == "root") close_backward(open_block), close_backward(open_root);
  if (open_block.unit == &unit) close_backward(open_block);
}

void free_storage(at::Tensor& t) {
  auto* impl = t.storage().unsafeGetStorageImpl();
  impl->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  impl->set_nbytes(0);
}

void alloc_storage(at::Tensor& t, size_t nbytes) {
  auto* impl = t.storage().unsafeGetStorageImpl();
  if (impl->nbytes() == nbytes) return;
  impl->set_data_ptr_noswap(impl->allocator()->allocate(nbytes));
  impl->set_nbytes(nbytes);
}

}  // namespace

int64_t ReduceQueue::bytes() const {
  int64_t total = 0;
  for (const FsdpUnit* u : units_) total += u->reducing_bytes();  // what each holds now
  return total;
}

void ReduceQueue::reserve(int64_t bytes) {
  // HSDP: the reductions issued before this one finish their reduce-scatter and start
  // their all-reduce over the replicas here, at the same point of the backward on every
  // rank: the two communicators' calls must be issued in one order everywhere (their
  // progress is shared: Communicator::share_progress). The reduce-scatter had the
  // backward of this unit to run in; the all-reduce has the next units'.
  for (FsdpUnit* u : units_) {
    if (u->replicates()) u->wait_scatter();
  }
  // Past the bound, finish the oldest first, while that can free anything (a unit alone
  // always fits; an all-reduce in place in the gradient shard holds no buffer).
  while (!units_.empty() && this->bytes() > 0 && this->bytes() + bytes > max_bytes_) {
    FsdpUnit* oldest = units_.front();
    units_.erase(units_.begin());
    oldest->finish_reduce();
  }
}

void ReduceQueue::push(FsdpUnit& unit) { units_.push_back(&unit); }

void ReduceQueue::drain() {
  // Every reduce-scatter first (starting the HSDP all-reduces, in issue order), then
  // every all-reduce.
  for (FsdpUnit* u : units_) u->wait_scatter();
  for (FsdpUnit* u : units_) u->finish_reduce();
  units_.clear();
}

void GradSink::clear() {
  if (lingering.defined()) lingering.mutable_grad() = at::Tensor();
  lingering = at::Tensor();
}

FsdpUnit::FsdpUnit(UnitLayout layout, std::vector<at::Tensor> params, Communicator& comm, Communicator* replicas,
                   const InitFn& init, at::ScalarType param_dtype, at::ScalarType reduce_dtype, GradSink& sink,
                   ReduceQueue& queue, bool async)
    : layout_(std::move(layout)),
      params_(std::move(params)),
      sink_(sink),
      comm_(comm),
      replicas_(replicas),
      param_dtype_(param_dtype),
      reduce_dtype_(reduce_dtype),
      queue_(queue),
      async_(async) {
  at::NoGradGuard no_grad;
  const auto opts = params_.at(0).options().dtype(at::kFloat);
  shard_ = at::zeros({layout_.shard}, opts);
  grad_shard_ = at::zeros({layout_.shard}, opts);
  // The gathered buffer: its sizes now, its storage only while gathered. Uninitialised
  // storage is given while the parameters' views are made (views are bounds-checked
  // against it), never touched, and freed at the end.
  full_ = at::empty({0}, opts.dtype(param_dtype_));
  full_.unsafeGetTensorImpl()->set_sizes_contiguous({layout_.padded});
  alloc_storage(full_, layout_.padded * full_.element_size());
  // Initialise this rank's range, parameter by parameter, with init (from (seed, name)): at most one
  // whole parameter exists at a time, beside the shard.
  const int64_t lo = layout_.begin(comm_.rank()), hi = lo + layout_.shard;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& slot = layout_.params[i];
    const int64_t a = std::max(lo, slot.offset), b = std::min(hi, slot.offset + slot.numel);
    if (a < b) {
      auto value = at::empty(slot.shape, opts);
      init(slot.name, value);
      shard_.narrow(0, a - lo, b - a).copy_(value.view({-1}).narrow(0, a - slot.offset, b - a));
    }
    // The module's parameter becomes a view of the gathered buffer (whatever memory it
    // had, if it was built materialised, is released here).
    params_[i].set_data(full_.narrow(0, slot.offset, slot.numel).view(slot.shape));
    hooks_.push_back(params_[i].register_hook([this, i](const at::Tensor& grad) { add_gradient(i, grad); }));
  }
  free_storage(full_);
  const FsdpAliases alias = fsdp_aliases(comm_.size(), param_dtype_, reduce_dtype_, replicas_ ? replicas_->size() : 1);
  alias_params_ = alias.params;
  alias_grads_ = alias.grads;
}

FsdpUnit::~FsdpUnit() {
  for (size_t i = 0; i < hooks_.size(); ++i) params_[i].remove_hook(hooks_[i]);
  // An aliased buffer points into shard_, which goes with this unit: leave the views empty.
  if (alias_params_) free_storage(full_);
}

void FsdpUnit::release() {
  pinned_ = false;
  reshard();
}

void FsdpUnit::gather_async() {
  if (gathered_ || pending_) return;
  if (alias_params_) return gather();  // nothing to wait for
  alloc_storage(full_, layout_.padded * full_.element_size());
  pending_ = comm_.all_gather_async(shard_.to(param_dtype_), full_);  // the Work keeps the cast alive
}

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

double FsdpUnit::take_comm_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

void FsdpUnit::gather() {
  if (gathered_) return;
  if (alias_params_) {  // the parameters view the shard (padded == shard on one rank); nothing to time
    auto* impl = full_.storage().unsafeGetStorageImpl();
    impl->set_data_ptr_noswap(at::DataPtr(shard_.data_ptr(), shard_.device()));  // not owned: the shard keeps it
    impl->set_nbytes(layout_.shard * full_.element_size());
    gathered_ = true;
    return;
  }
  const double start = now();
  if (!pending_) {
    alloc_storage(full_, layout_.padded * full_.element_size());
    comm_.all_gather(shard_.to(param_dtype_), full_);
  } else {
    pending_->wait();  // the prefetch started earlier
    pending_ = nullptr;
  }
  gathered_ = true;
  comm_seconds_ += now() - start;
}

void FsdpUnit::reshard() {
  if (!gathered_ || pinned_) return;
  free_gathered();
}

void FsdpUnit::free_gathered() {
  free_storage(full_);
  gathered_ = false;
}

int64_t FsdpUnit::transient_bytes() const {
  int64_t bytes = alias_params_ ? 0 : static_cast<int64_t>(full_.storage().nbytes());
  if (full_grad_.defined() && !alias_grads_) bytes += static_cast<int64_t>(full_grad_.storage().nbytes());
  return bytes + reducing_bytes();
}

int64_t FsdpUnit::reducing_bytes() const {
  if (!reducing_) return 0;
  auto held = [](const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.storage().nbytes()) : 0; };
  return held(reduce_send_) + held(reduce_out_) + held(replica_wire_);
}

void FsdpUnit::pin() {
  gather();
  pinned_ = true;
}

at::Tensor FsdpUnit::gather_master() {
  at::NoGradGuard no_grad;
  auto full = at::empty({layout_.padded}, shard_.options());
  comm_.all_gather(shard_, full);
  return full;
}

void FsdpUnit::add_gradient(size_t index, const at::Tensor& grad) {
  at::NoGradGuard no_grad;
  // The previous parameter's AccumulateGrad has run by now: drop what it stored, and
  // mark this one, whose .grad autograd fills right after this hook returns.
  sink_.clear();
  sink_.lingering = params_[index];
  if (grads_seen_ == 0) open_backward(layout_);  // no-op when its re-gather opened it
  if (!full_grad_.defined()) full_grad_ = alias_grads_ ? grad_shard_ : at::zeros({layout_.padded}, shard_.options());
  const auto& slot = layout_.params[index];
  full_grad_.narrow(0, slot.offset, slot.numel).add_(grad.reshape({-1}).to(at::kFloat));
  if (++grads_seen_ < params_.size()) return;
  // Every parameter of the unit has its gradient: this unit's backward is done.
  grads_seen_ = 0;
  queue_.note("backward " + layout_.name);
  if (reduce_) {
    reduce_gradients();
    pinned_ = false;
  }
  reshard();
  end_backward(layout_);
}

void FsdpUnit::reduce_gradients() {
  if (alias_grads_) {  // already summed in the gradient shard: one rank, nothing to reduce
    full_grad_ = at::Tensor();
    return;
  }
  // SUM over ranks: the loss is normalised by the global target count already.
  const int64_t bytes = (layout_.padded + layout_.shard) * at::elementSize(reduce_dtype_);
  if (async_) queue_.reserve(bytes);  // the bound holds before this reduction joins
  auto send = full_grad_.to(reduce_dtype_);
  auto reduced = at::empty({layout_.shard}, shard_.options().dtype(reduce_dtype_));
  full_grad_ = at::Tensor();
  queue_.note("issue " + layout_.name);
  if (!async_) {  // issued and waited here
    const double start = now();
    comm_.reduce_scatter(send, reduced, ReduceOp::kSum);
    add_reduced(reduced);
    comm_seconds_ += now() - start;
    queue_.note("finish " + layout_.name);
    return;
  }
  // In flight while the earlier units' backward runs; the buffers stay referenced here
  // until finish_reduce() (the Work keeps them alive too).
  reduce_send_ = std::move(send);
  reduce_out_ = std::move(reduced);
  reducing_ = comm_.reduce_scatter_async(reduce_send_, reduce_out_, ReduceOp::kSum);
  queue_.push(*this);  // finished before the optimizer, or when a later one needs the room
}

void FsdpUnit::wait_scatter() {
  if (!reducing_ || scattered_) return;
  const double start = now();
  reducing_->wait();  // the reduce-scatter issued when this unit's backward completed
  comm_seconds_ += now() - start;
  scattered_ = true;
  reduce_send_ = at::Tensor();  // the send buffer is free once the reduce-scatter is done
  queue_.note("scattered " + layout_.name);
  grad_shard_.add_(reduce_out_.to(at::kFloat));
  reduce_out_ = at::Tensor();
  if (replicates()) {  // in flight behind the next units' backward, until finish_reduce()
    replicating_ = replicate_shard(/*async=*/true);
    queue_.note("replicate " + layout_.name);
  }
}

void FsdpUnit::finish_reduce() {
  if (!reducing_) return;
  wait_scatter();
  if (replicating_) {
    const double start = now();
    replicating_->wait();  // HSDP: the all-reduce over the replicas
    land_replica();
    replicating_ = nullptr;
    comm_seconds_ += now() - start;
  }
  reducing_ = nullptr;
  scattered_ = false;
  queue_.note("finish " + layout_.name);
}

void FsdpUnit::add_reduced(at::Tensor& reduced) {
  grad_shard_.add_(reduced.to(at::kFloat));
  if (!replicates()) return;
  replicate_shard(/*async=*/false);
  land_replica();
}

WorkPtr FsdpUnit::replicate_shard(bool async) {
  // HSDP: every replica of this shard saw other data; sum their gradients too, once per
  // step (the shard holds every micro-batch's sum by now), in the reduce dtype.
  at::Tensor& buffer = reduce_dtype_ == at::kFloat ? grad_shard_ : (replica_wire_ = grad_shard_.to(reduce_dtype_));
  if (async) return replicas_->all_reduce_async(buffer, ReduceOp::kSum);
  replicas_->all_reduce(buffer, ReduceOp::kSum);
  return nullptr;
}

void FsdpUnit::land_replica() {
  if (!replica_wire_.defined()) return;  // fp32: reduced in place in the gradient shard
  grad_shard_.copy_(replica_wire_);
  replica_wire_ = at::Tensor();
}

FsdpModel::FsdpModel(Model& model, Communicator& comm, const FsdpConfig& config, uint64_t seed, Communicator* replicas)
    : model_(model),
      config_(config),
      inner_(model.block_runner()),
      queue_(std::max<int64_t>(0, config.reduce_in_flight_mb) * (int64_t{1} << 20)) {
  config_.validate();
  prefetch_ = config_.prefetches(model.parameters().at(0).device());
  const bool async_reduce = config_.reduces_async(model.parameters().at(0).device());
  const auto param_dtype = config_.param_type(model.parameters().at(0).device());
  const auto reduce_dtype = config_.reduce_type();
  std::map<const void*, bool> in_block;
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> block_params(model.num_blocks());
  for (size_t i = 0; i < model.num_blocks(); ++i) {
    for (const auto& p : model.block(i).named_parameters()) {
      block_params[i].emplace_back("block" + std::to_string(i) + "." + p.key(), p.value());
      in_block[p.value().unsafeGetTensorImpl()] = true;
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> root;
  for (const auto& p : model.named_parameters()) {
    if (!in_block.count(p.value().unsafeGetTensorImpl())) root.emplace_back(p.key(), p.value());
  }
  const FsdpUnit::InitFn init = [&model, seed](const std::string& name, at::Tensor& value) {
    model.init_parameter(name, value, seed);
  };
  auto make = [&](const std::string& name, const std::vector<std::pair<std::string, at::Tensor>>& params) {
    std::vector<at::Tensor> tensors;
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
    for (const auto& p : params) {
      tensors.push_back(p.second);
      shapes.emplace_back(p.first, p.second.sizes().vec());
    }
    units_.push_back(std::make_unique<FsdpUnit>(make_unit_layout(name, shapes, comm.size()), tensors, comm, replicas,
                                                init, param_dtype, reduce_dtype, sink_, queue_, async_reduce));
  };
  make("root", root);
  for (size_t i = 0; i < block_params.size(); ++i) make("block" + std::to_string(i), block_params[i]);

  model_.set_block_runner([this](size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
    return run_block(i, x, cond, ctx);
  });
}

void FsdpModel::prefetch(int64_t block) {
  if (!prefetch_ || block < 0 || block + 1 >= static_cast<int64_t>(units_.size())) return;
  int busy = 0;
  for (size_t u = 1; u < units_.size(); ++u) busy += units_[u]->gathered() || units_[u]->pending();
  if (busy < config_.max_gathered) units_[block + 1]->gather_async();
}

// All-gather forward (prefetching the next block), free after; in backward, a hook on
// the output re-gathers this block (prefetching the previous one) before its backward.
at::Tensor FsdpModel::run_block(size_t i, const at::Tensor& x, const at::Tensor& cond, const TokenContext& ctx) {
  auto& unit = *units_[i + 1];
  trace::ScopedSpan span("fsdp.forward", "fsdp");
  span.arg("unit", unit.layout().name);
  unit.gather();
  prefetch(static_cast<int64_t>(i) + 1);
  at::Tensor out = inner_ ? inner_(i, x, cond, ctx) : model_.forward_block(i, x, cond, ctx);
  // Without gradients nothing comes back for this block: free it whatever the setting.
  if (config_.reshard_after_forward || !at::GradMode::is_enabled()) {
    unit.reshard();
    if (out.requires_grad()) {
      out.register_hook([this, i, &unit](const at::Tensor&) {
        open_backward(unit.layout());  // the backward of this block starts with its re-gather
        unit.gather();
        prefetch(static_cast<int64_t>(i) - 1);
      });
    }
  }
  return out;
}

at::Tensor FsdpModel::forward(const std::function<at::Tensor()>& model_forward) {
  trace::ScopedSpan span("fsdp.forward", "fsdp");  // the root unit's: the whole model's forward
  span.arg("unit", units_[0]->layout().name);
  if (!at::GradMode::is_enabled()) {  // evaluation: nothing stays gathered afterwards
    units_[0]->gather();
    auto out = model_forward();
    units_[0]->release();
    return out;
  }
  units_[0]->pin();  // the root runs first and last: gathered until its gradients are reduced
  return model_forward();
}

FsdpModel::~FsdpModel() { model_.set_block_runner(inner_); }

void FsdpModel::finish_backward() {
  queue_.drain();  // the optimizer reads every gradient shard next
  for (auto& unit : units_) {
    const bool root = unit.get() == units_[0].get();
    // After a reducing backward every unit is free again, the root unpinned included.
    if (unit->reduces() && ((unit->gathered() && !root) || (root && unit->pinned()))) {
      throw std::logic_error("FSDP unit " + unit->layout().name + " did not receive all its gradients");
    }
  }
  sink_.clear();
  for (auto& p : model_.parameters()) p.mutable_grad() = at::Tensor();
}

void FsdpModel::set_micro_batch(int64_t index, int64_t count) {
  const bool last = index + 1 == count;
  for (auto& unit : units_) {
    unit->set_reduce(last || config_.accumulates_sharded());
    unit->set_replicate(last);
  }
}

std::vector<at::Tensor> FsdpModel::shards() {
  std::vector<at::Tensor> out;
  for (auto& u : units_) out.push_back(u->shard());
  return out;
}

std::vector<at::Tensor> FsdpModel::grad_shards() {
  std::vector<at::Tensor> out;
  for (auto& u : units_) out.push_back(u->grad_shard());
  return out;
}

void FsdpModel::zero_grad_shards() {
  for (auto& u : units_) u->grad_shard().zero_();
}

void FsdpModel::for_each_full_parameter(const std::function<void(const std::string&, const at::Tensor&)>& fn) {
  for (auto& u : units_) {
    const auto full = u->gather_master();  // [padded] fp32, freed before the next unit
    for (const auto& slot : u->layout().params) fn(slot.name, full.narrow(0, slot.offset, slot.numel).view(slot.shape));
  }
}

std::map<std::string, at::Tensor> FsdpModel::full_parameters() {
  std::map<std::string, at::Tensor> out;
  for_each_full_parameter([&](const std::string& name, const at::Tensor& value) { out[name] = value.clone(); });
  return out;
}

double FsdpModel::take_comm_seconds() {
  double s = 0;
  for (auto& u : units_) s += u->take_comm_seconds();
  return s;
}

int64_t FsdpModel::shard_bytes() const {
  int64_t bytes = 0;
  for (const auto& u : units_) bytes += 2 * u->layout().shard * static_cast<int64_t>(sizeof(float));
  return bytes;
}

}  // namespace reel
