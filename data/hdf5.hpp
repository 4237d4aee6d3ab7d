// The HDF5 helpers every reel file format shares (the video schema here, weights and
// state checkpoints elsewhere): the one process-wide lock, owned handles, attributes and
// row transfers. HDF5 as packaged by Debian is not thread-safe: every HDF5 call in reel
// is made while holding hdf5_mutex() (the data loader's prefetch thread and any
// background writer share this one lock).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace reel {

std::mutex& hdf5_mutex();

// Turns off HDF5's printing of its error stack: failures become reel exceptions that
// name the file instead. Call with hdf5_mutex() held.
void hdf5_quiet();

// An owned HDF5 identifier, closed (with the matching H5?close) when destroyed.
// Destroy it while holding hdf5_mutex().
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer close) : id_(id), close_(close) {}
  ~H5Id() { reset(); }
  H5Id(H5Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  H5Id& operator=(H5Id&& o) noexcept;
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Scalar attributes on any object (file, group, dataset). Writers return false on failure.
bool write_attribute(hid_t object, const std::string& name, int64_t value);
bool write_attribute(hid_t object, const std::string& name, double value);
bool write_attribute(hid_t object, const std::string& name, const std::string& value);
bool write_attribute(hid_t object, const std::string& name, const std::vector<int64_t>& values);  // 1-D
// Readers return false when the attribute is missing or of another kind.
bool read_attribute(hid_t object, const std::string& name, int64_t& value);
bool read_attribute(hid_t object, const std::string& name, double& value);
bool read_attribute(hid_t object, const std::string& name, std::string& value);

// Reads (write = false) or writes row `index` of a dataset [N, ...] from / to buf, which
// holds one contiguous row in mem_type. Returns false on failure, with HDF5's innermost
// reason in *error when given (hdf5_error_text()).
bool transfer_row(hid_t dataset, hid_t mem_type, int64_t index, void* buf, bool write, std::string* error = nullptr);

// The innermost message of this thread's HDF5 error stack (what the last failed call
// found, e.g. "Read failed (data error detected by Fletcher32 checksum)"); "" when the
// stack is empty. Call with hdf5_mutex() held, right after the failed call: the next
// HDF5 call clears the stack.
std::string hdf5_error_text();

// Whether a dataset carries HDF5's per-chunk Fletcher-32 checksum filter.
bool has_fletcher32(hid_t dataset);

// The dimensions of a dataset's dataspace.
std::vector<hsize_t> dataset_dims(hid_t dataset);

// --- Sample files (data/video_file.hpp, lm/corpus.hpp): one row per sample ---
// Each throws std::runtime_error("<what> <path>: <reason>"), what naming the kind of
// file ("video file"); call with hdf5_mutex() held.
[[noreturn]] void fail_file(const std::string& what, const std::string& path, const std::string& reason);
// Opens an existing HDF5 file read-only (a missing, non-HDF5 or damaged file is named so).
H5Id open_hdf5_read(const std::string& what, const std::string& path);
// Creates (truncates) a file; a missing folder is named as the reason.
H5Id create_hdf5_file(const std::string& what, const std::string& path);
// Opens dataset `name`, checking its rank and element type exactly (as numpy names it:
// "uint8", "float32"; byte order is HDF5's to convert); its dimensions in dims.
H5Id open_checked_dataset(hid_t file, const std::string& what, const std::string& path, const char* name, int rank,
                          const std::string& dtype, std::vector<hsize_t>& dims);
// Creates dataset `name` [dims] of `type`, one row per chunk (a sample is one contiguous
// read) with HDF5's Fletcher-32 checksum per chunk, verified by every read.
H5Id create_row_dataset(hid_t file, const std::string& what, const std::string& path, const char* name, hid_t type,
                        const std::vector<hsize_t>& dims);

}  // namespace reel
