// How the model's parameters come into being, and its one parameterised layer.
//
// A model is built either materialised (every parameter allocated and initialised from
// (seed, its name)) or deferred: every parameter has its shape, dtype and device but no
// memory (a storage of 0 bytes), so the whole model's structure costs nothing. Whoever
// materialises a deferred model gives each parameter its storage in place (FSDP: a view
// of a unit's gathered buffer, through set_data). Reading a deferred parameter is an
// error; is_materialized() tells.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace reel {

struct ParamInit {
  at::Device device = at::kCPU;
  bool deferred = false;  // true: no memory is allocated for any parameter
  uint64_t seed = 0;      // materialised models: initialised from (seed, parameter name)
};

// A parameter tensor [shape] float32 on init.device: zero-filled, or without storage
// when init.deferred.
at::Tensor new_parameter(at::IntArrayRef shape, const ParamInit& init);
// Whether t has memory for all its elements (false for a deferred or freed parameter).
bool is_materialized(const at::Tensor& t);

// param's values ~ N(0, std) drawn from (seed, name) alone (a CPU generator seeded by
// mix_seed(seed, name)): the same values whatever else exists, for Model::init_parameter.
void init_normal(const std::string& name, at::Tensor& param, uint64_t seed, double std = 0.02);

// y = x W^T + b through ops.hpp's linear (cuBLASLt with fused epilogues on CUDA).
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, const ParamInit& init);
  // x [..., in] -> [..., out]; gelu: tanh-GELU fused after the bias.
  at::Tensor forward(const at::Tensor& x, bool gelu = false);

  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out]
};
TORCH_MODULE(Linear);

}  // namespace reel
