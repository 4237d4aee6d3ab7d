#include "reel/data/video_file.hpp"

#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace reel {

// SHA-256 as FIPS 180-4 defines it: 64-byte blocks of big-endian 32-bit words, the
// message padded with 0x80, zeros and its length in bits (64-bit big-endian).
namespace {
constexpr uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
}  // namespace

Sha256::Sha256() : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::block(const unsigned char* p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
  }
  for (int i = 16; i < 64; ++i) {
    const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[i] + w[i];
    const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
}

void Sha256::update(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += bytes;
  if (used_ > 0) {  // complete the buffered block first
    const size_t n = std::min(bytes, 64 - used_);
    std::memcpy(buf_ + used_, p, n);
    used_ += n, p += n, bytes -= n;
    if (used_ < 64) return;
    block(buf_);
    used_ = 0;
  }
  for (; bytes >= 64; p += 64, bytes -= 64) block(p);
  std::memcpy(buf_, p, bytes);
  used_ = bytes;
}

std::string Sha256::hex_digest() {
  const uint64_t bits = total_ * 8;
  const unsigned char one = 0x80, zero = 0;
  update(&one, 1);
  while (used_ != 56) update(&zero, 1);
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
  update(length, 8);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (uint32_t word : h_) {
    for (int shift = 28; shift >= 0; shift -= 4) hex += digits[(word >> shift) & 0xf];
  }
  return hex;
}

namespace {

constexpr const char* kWhat = "video file";

[[noreturn]] void fail(const std::string& path, const std::string& what) { fail_file(kWhat, path, what); }

}  // namespace

VideoReader::VideoReader(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  info_.path = path;
  hdf5_quiet();
  file_ = open_hdf5_read(kWhat, path);
  size_ = std::filesystem::file_size(path);
  mtime_ = std::filesystem::last_write_time(path);
  std::vector<hsize_t> f, a;
  frames_ = open_checked_dataset(file_.get(), kWhat, path, "/frames", 5, "uint8", f);
  actions_ = open_checked_dataset(file_.get(), kWhat, path, "/actions", 3, "float32", a);
  if (a[0] != f[0] || a[1] != f[1]) {
    fail(path, "/actions [" + std::to_string(a[0]) + ", " + std::to_string(a[1]) + ", A] does not match /frames [" +
                   std::to_string(f[0]) + ", " + std::to_string(f[1]) + ", ...]");
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
  read_attribute(file_.get(), kContentHashAttribute, info_.content_sha256);
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

Samples VideoReader::read_samples(const std::vector<int64_t>& indices) {
  auto clips = read(indices);
  return {{"frames", clips.frames}, {"actions", clips.actions}};
}

std::string VideoReader::compute_content_sha256() {
  static_assert(sizeof(float) == 4, "actions are hashed as float32");
  Sha256 hash;
  const auto& i = info_;
  std::vector<uint8_t> frames(static_cast<size_t>(i.frames * i.height * i.width * i.channels));
  std::vector<float> actions(static_cast<size_t>(i.frames * i.action_dim));
  for (int64_t clip = 0; clip < i.clips; ++clip) {
    {  // the lock per clip: a loader thread of the same process waits for one clip at most
      std::lock_guard<std::mutex> lock(hdf5_mutex());
      if (clip == 0) check_unchanged(clip);
      std::string why;
      // Read as little-endian float32 whatever the host: the hash is of those bytes.
      if (!transfer_row(frames_.get(), H5T_NATIVE_UINT8, clip, frames.data(), false, &why) ||
          (i.action_dim > 0 && !transfer_row(actions_.get(), H5T_IEEE_F32LE, clip, actions.data(), false, &why))) {
        fail(i.path, "clip " + std::to_string(clip) + " cannot be read for its content hash: " + why);
      }
    }
    hash.update(frames.data(), frames.size());
    hash.update(actions.data(), actions.size() * sizeof(float));
  }
  return hash.hex_digest();
}

VideoWriter::VideoWriter(const std::string& path, int64_t clips, int64_t frames, int64_t height, int64_t width,
                         int64_t channels, int64_t action_dim, double fps, const std::string& provenance)
    : path_(path), clips_(clips) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  hdf5_quiet();
  file_ = create_hdf5_file(kWhat, path);
  frames_ = create_row_dataset(file_.get(), kWhat, path, "/frames", H5T_STD_U8LE,
                               {hsize_t(clips), hsize_t(frames), hsize_t(height), hsize_t(width), hsize_t(channels)});
  actions_ = create_row_dataset(file_.get(), kWhat, path, "/actions", H5T_IEEE_F32LE,
                                {hsize_t(clips), hsize_t(frames), hsize_t(action_dim)});
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
  // The content hash of the bytes as written (actions: the host's float32, little-endian
  // on every machine reel runs on); a clip out of order leaves the file without one.
  if (next_ == index) {
    hash_.update(f.data_ptr(), f.numel());
    hash_.update(a.data_ptr(), a.numel() * sizeof(float));
    ++next_;
  } else {
    next_ = -1;
  }
}

void VideoWriter::close() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  if (!file_.valid()) return;
  if (next_ == clips_ && !write_attribute(file_.get(), kContentHashAttribute, hash_.hex_digest())) {
    fail(path_, "cannot write its content hash attribute");
  }
  actions_.reset();
  frames_.reset();
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) fail(path_, "cannot flush (disk full?)");
  file_.reset();
}

}  // namespace reel
