#include "reel/model/layers.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "reel/model/ops.hpp"
#include "reel/model/seed.hpp"

namespace reel {

at::Tensor new_parameter(at::IntArrayRef shape, const ParamInit& init) {
  const auto opts = at::TensorOptions(at::kFloat).device(init.device);
  if (!init.deferred) return at::zeros(shape, opts);
  // A 0-byte storage with the parameter's sizes: its structure, none of its memory.
  auto t = at::empty({0}, opts);
  t.unsafeGetTensorImpl()->set_sizes_contiguous(shape);
  return t;
}

bool is_materialized(const at::Tensor& t) {
  if (!t.defined()) return false;
  if (t.numel() == 0) return true;
  const auto need = (t.storage_offset() + t.numel()) * static_cast<int64_t>(t.element_size());
  return t.storage().data() != nullptr && static_cast<int64_t>(t.storage().nbytes()) >= need;
}

void init_normal(const std::string& name, at::Tensor& param, uint64_t seed, double std) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, name));
  auto values = at::empty(param.sizes(), at::kFloat);
  values.normal_(0.0, std, gen);
  param.copy_(values);
}

LinearImpl::LinearImpl(int64_t in, int64_t out, const ParamInit& init) {
  weight = register_parameter("weight", new_parameter({out, in}, init));
  bias = register_parameter("bias", new_parameter({out}, init));
}

at::Tensor LinearImpl::forward(const at::Tensor& x, bool gelu) {
  // A deferred or freed parameter has no memory to read: fail loudly, never read it.
  TORCH_CHECK(is_materialized(weight) && is_materialized(bias),
              "a layer ran with parameters that have no memory (a deferred model used without its FSDP, or a unit "
              "that was not gathered)");
  return linear(x, weight, bias, gelu);
}

}  // namespace reel
