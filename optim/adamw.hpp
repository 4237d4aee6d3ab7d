// AdamW over flat fp32 shards (the FSDP master copy): decoupled weight decay with a
// per-element decay mask (0 for norms, biases, embeddings), bias-corrected moments.
// The update is the one of torch.optim.AdamW, element by element:
//   p *= 1 - lr * wd * mask;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// On CUDA tensors one fused kernel does all of it per element (optim/adamw_cuda.cu).
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace reel {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  void validate() const;  // throws std::invalid_argument naming the bad field
};

// The optimizer state of one flat shard: kept sharded, like the parameters.
struct AdamWState {
  at::Tensor exp_avg;     // [n] fp32
  at::Tensor exp_avg_sq;  // [n] fp32
};

class FlatAdamW {
 public:
  explicit FlatAdamW(AdamWConfig config);

  // param [n] fp32 (updated in place), decay_mask [n] (1 = decay, 0 = no decay).
  void add(const at::Tensor& param, const at::Tensor& decay_mask);
  // One step with grads [n] per added parameter, in order, at learning rate lr.
  void step(const std::vector<at::Tensor>& grads, double lr);

  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }  // for resuming from a checkpoint
  std::vector<AdamWState>& states() { return states_; }
  const AdamWConfig& config() const { return config_; }
  // Bytes this optimizer holds: the two moments and the decay mask of every shard.
  int64_t state_bytes() const;

 private:
  AdamWConfig config_;
  std::vector<at::Tensor> params_, masks_;
  std::vector<AdamWState> states_;
  int64_t steps_ = 0;
};

// The update of one shard: reference (ATen ops) and, on CUDA, the fused kernel.
void adamw_update(at::Tensor& param, const at::Tensor& grad, const at::Tensor& mask, AdamWState& state,
                  const AdamWConfig& config, double lr, int64_t step);
#ifdef REEL_HAVE_CUDA
void adamw_update_cuda(at::Tensor& param, const at::Tensor& grad, const at::Tensor& mask, AdamWState& state,
                       const AdamWConfig& config, double lr, int64_t step);
#endif

}  // namespace reel
