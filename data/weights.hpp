// Model weights as one HDF5 file that any HDF5 tool reads (h5py, h5ls, h5dump); loading
// reads data only, nothing in the file can execute code.
//
//   /                         attributes: format = "reel-weights", format_version = 1,
//                             model.<field> for every ModelConfig field (the architecture)
//   /params/<parameter name>  float32, the parameter's shape (e.g. block0.qkv.weight)
//
// The writer takes one parameter at a time, so a sharded model is saved unit by unit and
// no rank ever holds all of it. The file is written under a temporary name and renamed
// into place when closed: a reader never sees half a file.
#pragma once

#include <memory>
#include <string>

#include "reel/data/hdf5.hpp"
#include "reel/model/world_model.hpp"

namespace reel {

constexpr int kWeightsFormatVersion = 1;

class WeightsWriter {
 public:
  // Creates path + ".tmp"; throws std::runtime_error naming the file on failure.
  WeightsWriter(const std::string& path, const ModelConfig& config);
  ~WeightsWriter();  // an unclosed writer removes its temporary file
  WeightsWriter(const WeightsWriter&) = delete;
  WeightsWriter& operator=(const WeightsWriter&) = delete;

  // value: the parameter's full tensor, any device and floating dtype (stored float32).
  void write(const std::string& name, const at::Tensor& value);
  // Flushes and renames the file into place.
  void close();

 private:
  std::string path_, tmp_;
  H5Id file_, params_;
};

// The model configuration as attributes model.<field> of an HDF5 object, and back (throws
// std::runtime_error naming `path` on a missing attribute). Shared with state checkpoints.
bool write_model_config(hid_t object, const ModelConfig& config);
ModelConfig read_model_config(hid_t object, const std::string& path);
// Throws std::runtime_error("<what> <path>: model.<field> is X in the file, Y in the
// model") on the first field in which two configurations differ.
void check_same_model(const ModelConfig& stored, const ModelConfig& mine, const std::string& what,
                      const std::string& path);

// Writes every parameter of a whole (materialised) model.
void save_weights(WorldModelImpl& model, const std::string& path);
// The model configuration stored in a weights file (so a model can be built from it).
// Throws std::runtime_error naming the file: missing, not HDF5, not reel weights.
ModelConfig read_weights_config(const std::string& path);
// Loads every parameter; throws std::runtime_error naming the file and the parameter on
// an architecture that differs from the model's, a missing parameter or another shape.
void load_weights(WorldModelImpl& model, const std::string& path);

}  // namespace reel
