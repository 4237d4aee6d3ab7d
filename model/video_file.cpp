#include "model/video_file.hpp"

#include <hdf5.h>

#include <filesystem>
#include <stdexcept>

namespace reel {

std::mutex& hdf5_mutex() {
  static std::mutex m;  // HDF5 is one library state per process: so is its lock
  return m;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("video file " + path + ": " + what);
}

// Opens a dataset, checking its rank and element class/size.
hid_t open_dataset(hid_t file, const std::string& path, const char* name, int rank, H5T_class_t cls,
                   size_t bytes, std::vector<hsize_t>& dims) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) fail(path, std::string("missing dataset ") + name);
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  if (ds < 0) fail(path, std::string("cannot open dataset ") + name);
  hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
  const int got = H5Sget_simple_extent_ndims(space);
  const bool type_ok = H5Tget_class(type) == cls && H5Tget_size(type) == bytes;
  dims.assign(got > 0 ? got : 0, 0);
  if (got > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  H5Tclose(type);
  H5Sclose(space);
  if (got != rank || !type_ok) {
    H5Dclose(ds);
    fail(path, std::string("dataset ") + name + " must be rank " + std::to_string(rank) + " " +
                   (cls == H5T_INTEGER ? "uint8" : "float32") + ", found rank " + std::to_string(got) +
                   (type_ok ? "" : " of another type"));
  }
  return ds;
}

template <typename T>
T read_attr(hid_t file, const char* name, hid_t type, T fallback) {
  if (H5Aexists(file, name) <= 0) return fallback;
  T value = fallback;
  hid_t a = H5Aopen(file, name, H5P_DEFAULT);
  H5Aread(a, type, &value);
  H5Aclose(a);
  return value;
}

}  // namespace

VideoReader::VideoReader(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  info_.path = path;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions, not stderr noise
  if (!std::filesystem::exists(path)) fail(path, "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file (or its header is damaged)");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot open (truncated or damaged?)");
  std::vector<hsize_t> f, a;
  frames_ = open_dataset(file_, path, "/frames", 5, H5T_INTEGER, 1, f);
  actions_ = open_dataset(file_, path, "/actions", 3, H5T_FLOAT, 4, a);
  if (a[0] != f[0] || a[1] != f[1]) {
    fail(path, "/actions [" + std::to_string(a[0]) + ", " + std::to_string(a[1]) +
                   ", A] does not match /frames [" + std::to_string(f[0]) + ", " + std::to_string(f[1]) + ", ...]");
  }
  const int version = read_attr<int>(file_, "schema_version", H5T_NATIVE_INT, -1);
  if (version != kVideoSchemaVersion) {
    fail(path, "schema_version " + std::to_string(version) + " (expected " + std::to_string(kVideoSchemaVersion) + ")");
  }
  info_.clips = f[0], info_.frames = f[1], info_.height = f[2], info_.width = f[3], info_.channels = f[4];
  info_.action_dim = a[2];
  info_.fps = read_attr<double>(file_, "fps", H5T_NATIVE_DOUBLE, 0.0);
}

VideoReader::~VideoReader() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  if (actions_ >= 0) H5Dclose(actions_);
  if (frames_ >= 0) H5Dclose(frames_);
  if (file_ >= 0) H5Fclose(file_);
}

namespace {
// Reads row `index` of a dataset [N, ...] into dst (contiguous, one row).
// Reads (write = false) or writes row `index` of a dataset [N, ...] from / to buf.
bool transfer_row(hid_t ds, hid_t mem_type, int64_t index, void* buf, bool write) {
  hid_t space = H5Dget_space(ds);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> count(rank), start(rank, 0);
  H5Sget_simple_extent_dims(space, count.data(), nullptr);
  start[0] = index;
  count[0] = 1;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  hid_t mem = H5Screate_simple(rank, count.data(), nullptr);
  const herr_t status = write ? H5Dwrite(ds, mem_type, mem, space, H5P_DEFAULT, buf)
                              : H5Dread(ds, mem_type, mem, space, H5P_DEFAULT, buf);
  H5Sclose(mem);
  H5Sclose(space);
  return status >= 0;
}
}  // namespace

Clips VideoReader::read(const std::vector<int64_t>& indices) {
  const auto& i = info_;
  const int64_t b = static_cast<int64_t>(indices.size());
  Clips out{at::empty({b, i.frames, i.height, i.width, i.channels}, at::kByte),
            at::empty({b, i.frames, i.action_dim}, at::kFloat)};
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  for (int64_t n = 0; n < b; ++n) {
    const int64_t clip = indices[n];
    if (clip < 0 || clip >= i.clips) {
      fail(i.path, "clip " + std::to_string(clip) + " is outside [0, " + std::to_string(i.clips) + ")");
    }
    if (!transfer_row(frames_, H5T_NATIVE_UINT8, clip, out.frames[n].data_ptr(), false) ||
        (i.action_dim > 0 && !transfer_row(actions_, H5T_NATIVE_FLOAT, clip, out.actions[n].data_ptr(), false))) {
      fail(i.path, "cannot read clip " + std::to_string(clip) + " (truncated or damaged file?)");
    }
  }
  return out;
}

VideoWriter::VideoWriter(const std::string& path, int64_t clips, int64_t frames, int64_t height,
                         int64_t width, int64_t channels, int64_t action_dim, double fps,
                         const std::string& provenance)
    : path_(path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot create");
  auto make = [&](const char* name, hid_t type, std::vector<hsize_t> dims) {
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;  // one clip per chunk: a clip is one contiguous read
    bool empty = false;
    for (auto c : chunk) empty |= c == 0;
    if (!empty) H5Pset_chunk(plist, static_cast<int>(chunk.size()), chunk.data());
    hid_t ds = H5Dcreate2(file_, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    H5Pclose(plist);
    H5Sclose(space);
    if (ds < 0) fail(path, std::string("cannot create dataset ") + name);
    return ds;
  };
  frames_ = make("/frames", H5T_STD_U8LE, {hsize_t(clips), hsize_t(frames), hsize_t(height), hsize_t(width), hsize_t(channels)});
  actions_ = make("/actions", H5T_IEEE_F32LE, {hsize_t(clips), hsize_t(frames), hsize_t(action_dim)});
  auto attr = [&](const char* name, hid_t type, const void* value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file_, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, value);
    H5Aclose(a);
    H5Sclose(space);
  };
  const int version = kVideoSchemaVersion;
  attr("schema_version", H5T_NATIVE_INT, &version);
  attr("fps", H5T_NATIVE_DOUBLE, &fps);
  hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, provenance.size() + 1);
  attr("provenance", str, provenance.c_str());
  H5Tclose(str);
}

VideoWriter::~VideoWriter() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  if (actions_ >= 0) H5Dclose(actions_);
  if (frames_ >= 0) H5Dclose(frames_);
  if (file_ >= 0) H5Fclose(file_);
}

void VideoWriter::write(int64_t index, const at::Tensor& frames, const at::Tensor& actions) {
  auto f = frames.contiguous().to(at::kByte), a = actions.contiguous().to(at::kFloat);
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  auto put = [&](hid_t ds, hid_t type, void* src) {
    if (!transfer_row(ds, type, index, src, true)) fail(path_, "cannot write clip " + std::to_string(index));
  };
  put(frames_, H5T_NATIVE_UINT8, f.data_ptr());
  if (a.numel() > 0) put(actions_, H5T_NATIVE_FLOAT, a.data_ptr());
}

}  // namespace reel
