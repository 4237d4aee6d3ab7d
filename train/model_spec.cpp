#include "reel/train/model_spec.hpp"

#include <map>
#include <mutex>
#include <stdexcept>

#include "reel/train/world_spec.hpp"

namespace reel {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const ModelSpec>> specs;
  // Families replaced by another of the same name: kept, since a Trainer built before the
  // replacement still holds a reference to its family.
  std::vector<std::shared_ptr<const ModelSpec>> replaced;
};

// The registry, with the world model (the default family) already in it.
Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    auto world = world_model_spec();
    reg->specs[world->family()] = world;
    return reg;
  }();
  return *r;
}

}  // namespace

void register_model_spec(std::shared_ptr<const ModelSpec> spec) {
  if (!spec) throw std::invalid_argument("register_model_spec: no spec");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& slot = r.specs[spec->family()];
  if (slot) r.replaced.push_back(slot);
  slot = std::move(spec);
}

const ModelSpec& model_spec(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.specs.find(name);
  if (it != r.specs.end()) return *it->second;
  std::string known;
  for (const auto& s : r.specs) known += (known.empty() ? "" : ", ") + s.first;
  throw std::invalid_argument("unknown model.family '" + name + "' (registered: " + known + ")");
}

std::vector<std::string> model_families() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> out;
  for (const auto& s : r.specs) out.push_back(s.first);
  return out;
}

}  // namespace reel
