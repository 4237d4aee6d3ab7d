#include "reel/model/model.hpp"

#include "reel/model/layers.hpp"

namespace reel {

void init_model(Model& model, uint64_t seed) {
  at::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    if (!is_materialized(p.value())) p.value().set_data(at::empty(p.value().sizes(), p.value().options()));
    model.init_parameter(p.key(), p.value(), seed);
  }
}

}  // namespace reel
