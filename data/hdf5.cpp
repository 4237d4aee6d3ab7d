#include "reel/data/hdf5.hpp"

#include <filesystem>
#include <stdexcept>

namespace reel {
namespace {

// HDF5 closes whatever is still open from an atexit handler. A file whose write failed
// (a full disk) cannot be closed and stays in HDF5's tables; closing it again at exit
// crashes inside HDF5 (1.10), turning a run that reported the failure and went on into a
// segfault at its very end. reel closes every file it opens, so that handler has
// nothing to do: it is turned off before any other HDF5 call (static initialisation).
const bool kNoAtExit = [] {
  H5dont_atexit();
  return true;
}();

}  // namespace

std::mutex& hdf5_mutex() {
  static std::mutex m;  // HDF5 is one library state per process: so is its lock
  return m;
}

void hdf5_quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

H5Id& H5Id::operator=(H5Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

namespace {

bool write_scalar(hid_t object, const std::string& name, hid_t type, const void* value) {
  if (H5Aexists(object, name.c_str()) > 0) H5Adelete(object, name.c_str());
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(object, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  return attr.valid() && H5Awrite(attr.get(), type, value) >= 0;
}

// Opens attribute `name` if it exists and its type is of class `cls`.
H5Id open_attribute(hid_t object, const std::string& name, H5T_class_t cls) {
  if (H5Aexists(object, name.c_str()) <= 0) return {};
  H5Id attr(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) return {};
  H5Id type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != cls) return {};
  return attr;
}

}  // namespace

bool write_attribute(hid_t object, const std::string& name, int64_t value) {
  return write_scalar(object, name, H5T_NATIVE_INT64, &value);
}

bool write_attribute(hid_t object, const std::string& name, double value) {
  return write_scalar(object, name, H5T_NATIVE_DOUBLE, &value);
}

bool write_attribute(hid_t object, const std::string& name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), value.size() + 1);
  return write_scalar(object, name, type.get(), value.c_str());
}

bool write_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& values) {
  if (H5Aexists(object, name.c_str()) > 0) H5Adelete(object, name.c_str());
  const hsize_t n = values.size();
  H5Id space(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), H5Sclose);
  H5Id attr(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  return attr.valid() && (n == 0 || H5Awrite(attr.get(), H5T_NATIVE_INT64, values.data()) >= 0);
}

bool read_attribute(hid_t object, const std::string& name, int64_t& value) {
  H5Id attr = open_attribute(object, name, H5T_INTEGER);
  return attr.valid() && H5Aread(attr.get(), H5T_NATIVE_INT64, &value) >= 0;
}

bool read_attribute(hid_t object, const std::string& name, double& value) {
  H5Id attr = open_attribute(object, name, H5T_FLOAT);
  return attr.valid() && H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) >= 0;
}

bool read_attribute(hid_t object, const std::string& name, std::string& value) {
  H5Id attr = open_attribute(object, name, H5T_STRING);
  if (!attr.valid()) return false;
  H5Id type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tis_variable_str(type.get()) > 0) {  // as h5py writes them
    char* text = nullptr;
    if (H5Aread(attr.get(), type.get(), &text) < 0 || !text) return false;
    value.assign(text);
    H5free_memory(text);
    return true;
  }
  std::vector<char> buf(H5Tget_size(type.get()) + 1, '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0) return false;
  value.assign(buf.data());
  return true;
}

std::vector<hsize_t> dataset_dims(hid_t dataset) {
  H5Id space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0, 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

bool transfer_row(hid_t dataset, hid_t mem_type, int64_t index, void* buf, bool write, std::string* error) {
  hdf5_quiet();  // error printing is per thread where HDF5 is thread-safe: readers run on the loader's
  H5Id space(H5Dget_space(dataset), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1) return false;
  std::vector<hsize_t> count(rank), start(rank, 0);
  H5Sget_simple_extent_dims(space.get(), count.data(), nullptr);
  start[0] = index;
  count[0] = 1;
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  H5Id mem(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
  const herr_t status = write ? H5Dwrite(dataset, mem_type, mem.get(), space.get(), H5P_DEFAULT, buf)
                              : H5Dread(dataset, mem_type, mem.get(), space.get(), H5P_DEFAULT, buf);
  if (status < 0 && error) *error = hdf5_error_text();  // before the next call clears the stack
  return status >= 0;
}

std::string hdf5_error_text() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        char minor[256] = "";
        H5Eget_msg(e->min_num, nullptr, minor, sizeof(minor));
        std::string& t = *static_cast<std::string*>(out);
        t = minor;  // downward: the last one visited is the innermost
        if (e->desc && *e->desc) t += std::string(" (") + e->desc + ")";
        return 0;
      },
      &text);
  return text;
}

bool has_fletcher32(hid_t dataset) {
  H5Id plist(H5Dget_create_plist(dataset), H5Pclose);
  unsigned flags = 0;
  size_t n = 0;
  return plist.valid() &&
         H5Pget_filter_by_id2(plist.get(), H5Z_FILTER_FLETCHER32, &flags, &n, nullptr, 0, nullptr, nullptr) >= 0;
}

void fail_file(const std::string& what, const std::string& path, const std::string& reason) {
  throw std::runtime_error(what + " " + path + ": " + reason);
}

H5Id open_hdf5_read(const std::string& what, const std::string& path) {
  hdf5_quiet();
  if (!std::filesystem::exists(path)) fail_file(what, path, "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) fail_file(what, path, "not an HDF5 file (or its header is damaged)");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) fail_file(what, path, "cannot open (truncated or damaged?)");
  return file;
}

H5Id create_hdf5_file(const std::string& what, const std::string& path) {
  hdf5_quiet();
  H5Id file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file.valid()) return file;
  // Why, in the user's terms: a missing folder, or the system's reason (errno, through
  // HDF5's error stack, read first: the next HDF5 call clears it).
  const std::string hdf5 = hdf5_error_text();
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    fail_file(what, path, "cannot create: the folder " + parent.string() + " does not exist (create it first)");
  }
  fail_file(what, path, "cannot create: " + (hdf5.empty() ? std::string("HDF5 gave no reason") : hdf5));
}

namespace {

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

}  // namespace

H5Id open_checked_dataset(hid_t file, const std::string& what, const std::string& path, const char* name, int rank,
                          const std::string& dtype, std::vector<hsize_t>& dims) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) fail_file(what, path, std::string("missing dataset ") + name);
  H5Id ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) fail_file(what, path, std::string("cannot open dataset ") + name);
  H5Id type(H5Dget_type(ds.get()), H5Tclose);
  const std::string found = type_name(type.get());
  dims = dataset_dims(ds.get());
  const int got = static_cast<int>(dims.size());
  if (got != rank || found != dtype) {
    fail_file(what, path,
              std::string("dataset ") + name + " must be rank " + std::to_string(rank) + " " + dtype + ", found rank " +
                  std::to_string(got) + " " + found);
  }
  return ds;
}

H5Id create_row_dataset(hid_t file, const std::string& what, const std::string& path, const char* name, hid_t type,
                        const std::vector<hsize_t>& dims) {
  H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Id plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  std::vector<hsize_t> chunk = dims;
  chunk[0] = 1;
  bool empty = false;
  for (auto c : chunk) empty |= c == 0;
  if (!empty && (H5Pset_chunk(plist.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
                 H5Pset_fletcher32(plist.get()) < 0)) {
    fail_file(what, path, std::string("cannot set up the chunks and checksums of ") + name);
  }
  H5Id ds(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, plist.get(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) fail_file(what, path, std::string("cannot create dataset ") + name);
  return ds;
}

}  // namespace reel
