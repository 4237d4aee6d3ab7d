#include "data/video_file.hpp"

#include <filesystem>
#include <stdexcept>

namespace reel {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("video file " + path + ": " + what);
}

// The element type as numpy would name it ("uint8", "int16", "float32"), or its class.
std::string type_name(hid_t type) {
  const size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    default:
      return "a non-numeric type";
  }
}

// Opens a dataset, checking its rank and its element type exactly (by name: "uint8" or
// "float32"; byte order is HDF5's to convert).
H5Id open_dataset(hid_t file, const std::string& path, const char* name, int rank, const std::string& dtype,
                  std::vector<hsize_t>& dims) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) fail(path, std::string("missing dataset ") + name);
  H5Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) fail(path, std::string("cannot open dataset ") + name);
  H5Id type(H5Dget_type(ds.get()), H5Tclose);
  const std::string found = type_name(type.get());
  dims = dataset_dims(ds.get());
  const int got = static_cast<int>(dims.size());
  if (got != rank || found != dtype) {
    fail(path, std::string("dataset ") + name + " must be rank " + std::to_string(rank) + " " + dtype + ", found rank " +
                   std::to_string(got) + " " + found);
  }
  return ds;
}

}  // namespace

VideoReader::VideoReader(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  info_.path = path;
  hdf5_quiet();
  if (!std::filesystem::exists(path)) fail(path, "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail(path, "not an HDF5 file (or its header is damaged)");
  file_ = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) fail(path, "cannot open (truncated or damaged?)");
  size_ = std::filesystem::file_size(path);
  mtime_ = std::filesystem::last_write_time(path);
  std::vector<hsize_t> f, a;
  frames_ = open_dataset(file_.get(), path, "/frames", 5, "uint8", f);
  actions_ = open_dataset(file_.get(), path, "/actions", 3, "float32", a);
  if (a[0] != f[0] || a[1] != f[1]) {
    fail(path, "/actions [" + std::to_string(a[0]) + ", " + std::to_string(a[1]) +
                   ", A] does not match /frames [" + std::to_string(f[0]) + ", " + std::to_string(f[1]) + ", ...]");
  }
  int64_t version = -1;
  read_attribute(file_.get(), "schema_version", version);
  if (version != kVideoSchemaVersion) {
    fail(path, "schema_version " + std::to_string(version) + " (expected " + std::to_string(kVideoSchemaVersion) + ")");
  }
  info_.clips = f[0], info_.frames = f[1], info_.height = f[2], info_.width = f[3], info_.channels = f[4];
  info_.action_dim = a[2];
  read_attribute(file_.get(), "fps", info_.fps);
  read_attribute(file_.get(), "provenance", info_.provenance);
  info_.checksums = has_fletcher32(frames_.get()) && (info_.action_dim == 0 || has_fletcher32(actions_.get()));
}

VideoReader::~VideoReader() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  actions_.reset();
  frames_.reset();
  file_.reset();
}

void VideoReader::check_unchanged(int64_t clip) const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(info_.path, ec);
  const auto mtime = std::filesystem::last_write_time(info_.path, ec);
  if (ec || size != size_ || mtime != mtime_) {
    fail(info_.path, "changed under the running job while reading clip " + std::to_string(clip) + " (" +
                         (ec ? "it is gone: " + ec.message()
                             : "size " + std::to_string(size_) + " -> " + std::to_string(size) + " bytes" +
                                   (mtime != mtime_ ? ", modified" : "")) +
                         "): data files must not be rewritten while reel reads them");
  }
}

Clips VideoReader::read(const std::vector<int64_t>& indices) {
  const auto& i = info_;
  const int64_t b = static_cast<int64_t>(indices.size());
  Clips out{at::empty({b, i.frames, i.height, i.width, i.channels}, at::kByte),
            at::empty({b, i.frames, i.action_dim}, at::kFloat)};
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  if (b > 0) check_unchanged(indices[0]);  // one stat per batch: cheap next to the read
  for (int64_t n = 0; n < b; ++n) {
    const int64_t clip = indices[n];
    if (clip < 0 || clip >= i.clips) {
      fail(i.path, "clip " + std::to_string(clip) + " is outside [0, " + std::to_string(i.clips) + ")");
    }
    std::string why;
    if (!transfer_row(frames_.get(), H5T_NATIVE_UINT8, clip, out.frames[n].data_ptr(), false, &why) ||
        (i.action_dim > 0 &&
         !transfer_row(actions_.get(), H5T_NATIVE_FLOAT, clip, out.actions[n].data_ptr(), false, &why))) {
      fail(i.path, "clip " + std::to_string(clip) + " is damaged: " +
                       (why.find("checksum") != std::string::npos ? "it fails its checksum"
                                                                  : "it cannot be read (truncated or damaged file?)") +
                       (why.empty() ? "" : " [HDF5: " + why + "]"));
    }
    // A NaN or Inf action would turn every loss and gradient non-finite, far from here.
    if (i.action_dim > 0 && !at::isfinite(out.actions[n]).all().item<bool>()) {
      fail(i.path, "clip " + std::to_string(clip) + " has non-finite actions (NaN or Inf) in /actions");
    }
  }
  return out;
}

namespace {

// Why a file cannot be created, in the user's terms: a missing folder, or the system's
// reason (errno, through HDF5's error stack).
std::string create_failure(const std::string& path) {
  const std::string hdf5 = hdf5_error_text();  // first: the next HDF5 call clears it
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    return "the folder " + parent.string() + " does not exist (create it first)";
  }
  return hdf5.empty() ? "HDF5 gave no reason" : hdf5;
}

}  // namespace

VideoWriter::VideoWriter(const std::string& path, int64_t clips, int64_t frames, int64_t height,
                         int64_t width, int64_t channels, int64_t action_dim, double fps,
                         const std::string& provenance)
    : path_(path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  file_ = H5Id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) fail(path, "cannot create: " + create_failure(path));
  auto make = [&](const char* name, hid_t type, std::vector<hsize_t> dims) {
    H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
    H5Id plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;  // one clip per chunk: a clip is one contiguous read
    bool empty = false;
    for (auto c : chunk) empty |= c == 0;
    // Fletcher-32 per chunk: each clip carries its checksum, verified by every read.
    if (!empty && (H5Pset_chunk(plist.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
                   H5Pset_fletcher32(plist.get()) < 0)) {
      fail(path, std::string("cannot set up the chunks and checksums of ") + name);
    }
    H5Id ds(H5Dcreate2(file_.get(), name, type, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) fail(path, std::string("cannot create dataset ") + name);
    return ds;
  };
  frames_ = make("/frames", H5T_STD_U8LE, {hsize_t(clips), hsize_t(frames), hsize_t(height), hsize_t(width), hsize_t(channels)});
  actions_ = make("/actions", H5T_IEEE_F32LE, {hsize_t(clips), hsize_t(frames), hsize_t(action_dim)});
  if (!write_attribute(file_.get(), "schema_version", int64_t{kVideoSchemaVersion}) ||
      !write_attribute(file_.get(), "fps", fps) || !write_attribute(file_.get(), "provenance", provenance)) {
    fail(path, "cannot write the file's attributes");
  }
}

VideoWriter::~VideoWriter() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  actions_.reset();
  frames_.reset();
  file_.reset();
}

void VideoWriter::write(int64_t index, const at::Tensor& frames, const at::Tensor& actions) {
  auto f = frames.contiguous().to(at::kByte), a = actions.contiguous().to(at::kFloat);
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  auto put = [&](const H5Id& ds, hid_t type, void* src) {
    if (!transfer_row(ds.get(), type, index, src, true)) fail(path_, "cannot write clip " + std::to_string(index));
  };
  put(frames_, H5T_NATIVE_UINT8, f.data_ptr());
  if (a.numel() > 0) put(actions_, H5T_NATIVE_FLOAT, a.data_ptr());
}

}  // namespace reel
