#include "reel/data/weights.hpp"

#include <filesystem>
#include <sstream>
#include <type_traits>

namespace reel {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("weights file " + path + ": " + what);
}

// Every field of ModelConfig, as (attribute name, value) pairs and back: the one list both
// directions use, so a field added to one is in the other. A mode is stored as its name
// (a string attribute: the files written before the enums read as they did).
template <typename Visit>
void visit_config(ModelConfig& c, Visit&& v) {
  v("family", c.family), v("vocab", c.vocab), v("seq_len", c.seq_len);
  v("preset", c.preset), v("frames", c.frames), v("channels", c.channels), v("height", c.height);
  v("width", c.width), v("action_dim", c.action_dim), v("patch_t", c.patch_t), v("patch_h", c.patch_h);
  v("patch_w", c.patch_w), v("dim", c.dim), v("depth", c.depth), v("heads", c.heads);
  v("mlp_ratio", c.mlp_ratio), v("mlp", c.mlp), v("attention", c.attention);
  v("context_groups", c.context_groups), v("time_sampling", c.time_sampling);
  v("logit_normal_mean", c.logit_normal_mean), v("logit_normal_std", c.logit_normal_std);
  v("rope_theta", c.rope_theta), v("context_sampling", c.context_sampling), v("context_noise", c.context_noise);
}

template <typename T>
bool write_field(hid_t object, const std::string& name, const T& value) {
  if constexpr (std::is_enum_v<T>) {
    return write_attribute(object, name, std::string(enum_name(value)));
  } else {
    return write_attribute(object, name, value);
  }
}

// Reads one field; a mode whose stored name is not one of its choices throws
// std::runtime_error naming the file (`path`).
template <typename T>
bool read_field(hid_t object, const std::string& name, T& value, const std::string& path) {
  if constexpr (std::is_enum_v<T>) {
    std::string text;
    if (!read_attribute(object, name, text)) return false;
    try {
      value = parse_enum<T>(name, text);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
    return true;
  } else {
    return read_attribute(object, name, value);
  }
}

H5Id open_file(const std::string& path) {
  if (!std::filesystem::exists(path)) fail(path, "no such file");
  if (std::filesystem::is_directory(path)) fail(path, "is a directory, not a weights file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file (or its header is damaged)");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) fail(path, "cannot open (truncated or damaged?)");
  std::string format;
  int64_t version = -1;
  if (!read_attribute(file.get(), "format", format) || format != "reel-weights") {
    fail(path, "not a reel weights file (no format = \"reel-weights\" attribute)");
  }
  read_attribute(file.get(), "format_version", version);
  if (version != kWeightsFormatVersion) {
    fail(path,
         "format_version " + std::to_string(version) + ", this reel reads " + std::to_string(kWeightsFormatVersion));
  }
  return file;
}

}  // namespace

ModelConfig read_model_config(hid_t object, const std::string& path) {
  ModelConfig c;
  visit_config(c, [&](const char* key, auto& field) {
    // Training-only fields added later: files written before them keep the defaults.
    const std::string name(key);
    const bool optional = name == "context_sampling" || name == "context_noise" || name == "family" ||
                          name == "vocab" || name == "seq_len";
    if (!read_field(object, "model." + name, field, path) && !optional) {
      throw std::runtime_error(path + ": no attribute model." + name);
    }
  });
  return c;
}

bool write_model_config(hid_t object, const ModelConfig& config) {
  ModelConfig c = config;
  bool ok = true;
  visit_config(
      c, [&](const char* key, auto& field) { ok = ok && write_field(object, std::string("model.") + key, field); });
  return ok;
}

void check_same_model(const ModelConfig& stored, const ModelConfig& mine, const std::string& what,
                      const std::string& path) {
  ModelConfig a = stored, b = mine;
  std::vector<std::string> a_values, b_values, keys;
  auto text = [](const auto& field) {
    std::ostringstream s;
    s << field;
    return s.str();
  };
  visit_config(a, [&](const char* key, auto& field) {
    keys.push_back(key);
    a_values.push_back(text(field));
  });
  visit_config(b, [&](const char*, auto& field) { b_values.push_back(text(field)); });
  for (size_t i = 0; i < keys.size(); ++i) {
    if (a_values[i] != b_values[i]) {
      throw std::runtime_error(what + " " + path + ": model." + keys[i] + " is " + a_values[i] + " in the file, " +
                               b_values[i] + " in the model");
    }
  }
}

WeightsWriter::WeightsWriter(const std::string& path, const ModelConfig& config) : path_(path), tmp_(path + ".tmp") {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  file_ = H5Id(H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) fail(path, "cannot create " + tmp_);
  const bool ok = write_attribute(file_.get(), "format", std::string("reel-weights")) &&
                  write_attribute(file_.get(), "format_version", int64_t{kWeightsFormatVersion}) &&
                  write_model_config(file_.get(), config);
  params_ = H5Id(H5Gcreate2(file_.get(), "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!ok || !params_.valid()) fail(path, "cannot write the file's header to " + tmp_);
}

WeightsWriter::~WeightsWriter() {
  if (!file_.valid()) return;
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  params_.reset();
  file_.reset();
  std::error_code ignored;
  std::filesystem::remove(tmp_, ignored);
}

void WeightsWriter::write(const std::string& name, const at::Tensor& value) {
  auto v = value.detach().to(at::kCPU, at::kFloat).contiguous();
  std::vector<hsize_t> dims(v.sizes().begin(), v.sizes().end());
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Id ds(H5Dcreate2(params_.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
          H5Dclose);
  if (!ds.valid() || H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data_ptr()) < 0) {
    fail(path_, "cannot write parameter " + name + " to " + tmp_ + " (disk full?)");
  }
}

void WeightsWriter::close() {
  {
    std::lock_guard<std::mutex> lock(hdf5_mutex());
    params_.reset();
    const bool flushed = H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) >= 0;
    file_.reset();
    if (!flushed) fail(path_, "cannot flush " + tmp_ + " (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) fail(path_, "cannot rename " + tmp_ + " into place: " + ec.message());
}

void save_weights(WorldModelImpl& model, const std::string& path) {
  WeightsWriter writer(path, model.config());
  for (const auto& p : model.named_parameters()) writer.write(p.key(), p.value());
  writer.close();
}

ModelConfig read_weights_config(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  H5Id file = open_file(path);
  try {
    return read_model_config(file.get(), path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("weights file " + std::string(e.what()));
  }
}

void load_weights(WorldModelImpl& model, const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  H5Id file = open_file(path);
  check_same_model(read_model_config(file.get(), path), model.config(), "weights file", path);
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    const std::string name = "params/" + p.key();
    if (H5Lexists(file.get(), "params", H5P_DEFAULT) <= 0 || H5Lexists(file.get(), name.c_str(), H5P_DEFAULT) <= 0) {
      fail(path, "no parameter " + p.key());
    }
    H5Id ds(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    const auto dims = ds.valid() ? dataset_dims(ds.get()) : std::vector<hsize_t>{};
    const std::vector<int64_t> shape(dims.begin(), dims.end());
    if (!ds.valid() || shape != p.value().sizes().vec()) {
      std::ostringstream s;
      s << "parameter " << p.key() << " is " << at::IntArrayRef(shape) << ", the model's " << p.value().sizes();
      fail(path, s.str());
    }
    auto value = at::empty(p.value().sizes(), at::kFloat);
    if (H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, value.data_ptr()) < 0) {
      fail(path, "cannot read parameter " + p.key() + " (truncated or damaged file?)");
    }
    if (!is_materialized(p.value())) p.value().set_data(at::empty(p.value().sizes(), p.value().options()));
    p.value().copy_(value);
  }
}

}  // namespace reel
