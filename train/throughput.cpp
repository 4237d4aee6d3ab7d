#include "reel/train/throughput.hpp"

#include "reel/train/model_spec.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "reel/dist/process_mesh.hpp"
#include "reel/model/flow.hpp"

namespace reel {

StepFlops step_flops(const ModelSpec& spec, const ModelConfig& cfg, int64_t global_batch,
                     const ActivationCheckpointConfig& ac) {
  StepFlops f;
  f.model = 3.0 * spec.forward_flops(cfg, global_batch);  // backward = 2 x forward
  f.hardware = f.model + double(ac.recomputed_blocks(cfg.depth)) * spec.block_forward_flops(cfg, global_batch);
  return f;
}

namespace {

namespace fs = std::filesystem;
using Shapes = std::vector<std::array<int64_t, 3>>;  // rows x in x out of each GEMM

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Best rate of `trials` timed runs of x W^T, each at least min_seconds long.
double best_gemm_rate(int64_t rows, int64_t in, int64_t out, at::ScalarType dtype, int trials, double min_seconds) {
  auto x = at::randn({rows, in}).to(dtype), w = at::randn({out, in}).to(dtype);
  for (int i = 0; i < 3; ++i) at::linear(x, w);  // warm-up: threads, caches, packing
  const double flops = 2.0 * rows * in * out;
  double best = 0;
  for (int t = 0; t < trials; ++t) {
    int64_t n = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      at::linear(x, w);
      ++n;
      elapsed = seconds_since(start);
    } while (elapsed < min_seconds);
    best = std::max(best, flops * double(n) / elapsed);
  }
  return best;
}

// The block's GEMMs at `rows` (clamped to [64, 4096]): qkv, fc1, fc2.
Shapes block_gemms(const ModelConfig& cfg, int64_t rows) {
  rows = std::clamp<int64_t>(rows, 64, 4096);
  const int64_t d = cfg.dim, hidden = cfg.mlp_hidden(), fc1 = cfg.mlp_fc1();
  return {{rows, d, 3 * d}, {rows, d, fc1}, {rows, hidden, d}};
}

// The host's peak at the shapes: `cores` x the rate of one thread (FLOPs-weighted over the
// shapes: total FLOPs over total best time), best of 25 warmed windows of >= 20 ms per
// shape (~1.5 s). Why one thread x cores and not all cores' threads in one GEMM: on a
// loaded host (here: 2 cores beside other jobs) a multi-threaded GEMM waits at every
// barrier for a descheduled thread and read 6 to 150 GFLOP/s a second apart, while the
// best short window of one thread stayed at 160-178; and CPU ranks run a few threads
// each, so the sum of the cores' own rates is the ceiling they share. Hyperthreads
// counted as cores overstate it (state run.peak_flops there).
double measure_host(const Shapes& shapes, at::ScalarType dtype, int cores) {
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  double flops = 0, seconds = 0;
  try {
    for (const auto& s : shapes) {
      const double f = 2.0 * s[0] * s[1] * s[2];
      flops += f;
      seconds += f / best_gemm_rate(s[0], s[1], s[2], dtype, 25, 0.02);
    }
  } catch (...) {
    at::set_num_threads(before);
    throw;
  }
  at::set_num_threads(before);
  return cores * flops / seconds;
}

// The cores this process may run on, as a 0/1 tensor over CPU ids [CPU_SETSIZE] (its
// affinity mask: all of the host's under --bind-to none; one core's when the launcher
// binds ranks to cores).
at::Tensor affinity_mask() {
  at::Tensor mask = at::zeros({CPU_SETSIZE}, at::kDouble);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    const int n = std::min<int>(CPU_SETSIZE, std::max(1u, std::thread::hardware_concurrency()));
    mask.narrow(0, 0, n).fill_(1);
    return mask;
  }
  auto* m = mask.data_ptr<double>();
  for (int c = 0; c < CPU_SETSIZE; ++c) m[c] = CPU_ISSET(c, &set) ? 1 : 0;
  return mask;
}

// /proc/cpuinfo's first "model name" (x86), else "unknown CPU".
std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto begin = line.find_first_not_of(" \t", colon + 1);
    if (begin != std::string::npos) return line.substr(begin);
  }
  return "unknown CPU";
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M", &local);
  return text;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// One [section] of the cache: its key = value lines, in file order.
struct Entry {
  std::string key;
  std::vector<std::pair<std::string, std::string>> values;
  std::string get(const std::string& name) const {
    for (const auto& [k, v] : values) {
      if (k == name) return v;
    }
    return "";
  }
};

// The cache's entries. A file that is not there is empty; one that cannot be read, or a
// line that is neither a comment, [section] nor key = value, adds a warning.
std::vector<Entry> read_cache(const std::string& path, std::vector<std::string>& warnings) {
  std::vector<Entry> entries;
  std::error_code ec;
  if (!fs::exists(path, ec)) return entries;
  std::ifstream in(path);
  if (!fs::is_regular_file(path, ec) || !in) {
    warnings.push_back(path + ": cannot read the CPU peak cache (not a readable file); measuring the peak again");
    return entries;
  }
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    const auto eq = line.find('=');
    if (line.front() == '[' && line.back() == ']') {
      entries.push_back({trim(line.substr(1, line.size() - 2)), {}});
    } else if (eq != std::string::npos && !entries.empty()) {
      entries.back().values.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
    } else {
      warnings.push_back(path + " line " + std::to_string(number) + ": not [key] or name = value (\"" + line +
                         "\"); ignored, and the file is rewritten without it");
    }
  }
  return entries;
}

// Writes the entries to path through a temporary file renamed over it; "" or why not.
std::string write_cache(const std::string& path, const std::vector<Entry>& entries) {
  std::error_code ec;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) return "cannot create " + target.parent_path().string() + ": " + ec.message();
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "# reel: the CPU peak (FLOP/s) of this host, per GEMM configuration, for MFU (train/throughput.hpp).\n"
        << "# Measured once per key; delete an entry (or this file) to measure it again at the next start.\n";
    for (const auto& e : entries) {
      out << "\n[" << e.key << "]\n";
      for (const auto& [k, v] : e.values) out << k << " = " << v << "\n";
    }
    out.flush();
    if (!out) {
      fs::remove(temp, ec);
      return "cannot write " + temp;
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    const std::string why = "cannot rename " + temp + " to " + path + ": " + ec.message();
    fs::remove(temp, ec);
    return why;
  }
  return "";
}

// Adds (or replaces) one entry of the cache file, holding an flock on PATH.lock from the
// read to the rename so that concurrent writers keep each other's entries. Returns why it
// could not be written ("" when it was).
std::string add_to_cache(const std::string& path, const Entry& entry) {
  std::error_code ec;
  const auto folder = fs::path(path).parent_path();
  if (!folder.empty()) fs::create_directories(folder, ec);
  const int fd = ::open((path + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd >= 0) ::flock(fd, LOCK_EX);  // no lock file (read-only folder): the write below says why
  std::vector<std::string> ignored;   // read_cache's complaints were reported at the first read
  auto entries = read_cache(path, ignored);
  entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.key == entry.key; }),
                entries.end());
  entries.push_back(entry);
  const std::string why = write_cache(path, entries);
  if (fd >= 0) ::close(fd);  // releases the lock
  return why;
}

std::string gflops(double flops) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << flops / 1e9 << " GFLOP/s";
  return s.str();
}

// "host 168.4 GFLOP/s over 2 ranks, measured ... recorded in ..." for the log.
std::string describe(const HostPeak& h, int ranks) {
  std::string s = "host " + gflops(h.flops) + " over " + std::to_string(ranks) + (ranks == 1 ? " rank" : " ranks") +
                  ", measured " + h.measured + " at this model's GEMM shapes (" + std::to_string(h.cores) +
                  (h.cores == 1 ? " core" : " cores") + " x one thread's best)";
  if (h.from_cache) return s + ", read from " + h.path + " (delete its entry to measure again)";
  if (!h.not_recorded.empty()) return s + ", not recorded (" + h.not_recorded + ")";
  return s + ", recorded in " + h.path;
}

// CPU: the node's first rank reads or measures the host; the others sleep until it sends
// the figure (polling, so that waiting ranks leave the cores to the measurement).
PeakFlops cpu_peak(const ProcessMesh& mesh, const ModelConfig& cfg, int64_t rows, at::ScalarType dtype) {
  auto& world = mesh.world();
  const int me = world.rank(), node = mesh.node_of(me);
  std::vector<int> node_ranks;  // world ranks on this node, ascending
  for (int r = 0; r < world.size(); ++r) {
    if (mesh.node_of(r) == node) node_ranks.push_back(r);
  }
  const int ranks = static_cast<int>(node_ranks.size());
  world.barrier();  // construction done everywhere: the host's cores are free
  constexpr int kTag = 7022;
  at::Tensor host = at::zeros({1}, at::kDouble);
  PeakFlops p;
  if (me == node_ranks.front()) {
    // The host's cores are those of all its ranks: bound ranks each hold one or a few.
    at::Tensor cores_mask = affinity_mask();
    for (size_t i = 1; i < node_ranks.size(); ++i) {
      at::Tensor theirs = at::empty_like(cores_mask);
      world.recv_async(theirs, node_ranks[i], kTag + 1)->wait();
      cores_mask = at::maximum(cores_mask, theirs);
    }
    const int cores = std::max(1, static_cast<int>(cores_mask.sum().item<double>()));
    const Shapes shapes = block_gemms(cfg, rows);
    std::string error;
    try {
      const auto h = cached_host_peak(cpu_peak_cache_path(), cpu_peak_key(cpu_model_name(), cores, dtype, shapes),
                                      cores, [&] { return measure_host(shapes, dtype, cores); });
      host.fill_(h.flops);
      p.source = describe(h, ranks);
      p.warnings = h.warnings;
    } catch (const std::exception& e) {
      error = e.what();
      host.fill_(std::nan(""));  // the node's other ranks, waiting for the figure, fail with it
    }
    for (size_t i = 1; i < node_ranks.size(); ++i) world.send(host, node_ranks[i], kTag);
    if (!error.empty()) throw std::runtime_error("measuring this host's CPU peak for MFU: " + error);
  } else {
    world.send(affinity_mask(), node_ranks.front(), kTag + 1);
    auto work = world.recv_async(host, node_ranks.front(), kTag);
    while (!work->completed()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    work->wait();
    if (std::isnan(host.item<double>())) {
      throw std::runtime_error("rank " + std::to_string(node_ranks.front()) +
                               " (this node's first) could not "
                               "measure the host's CPU peak for MFU (its error says why); --run.peak_flops states one");
    }
    p.source = "host " + gflops(host.item<double>()) + " over " + std::to_string(ranks) + " ranks, from rank " +
               std::to_string(node_ranks.front()) + " (this node's first)";
  }
  p.per_rank = host.item<double>() / ranks;
  at::Tensor sum = at::full({1}, p.per_rank, at::kDouble);
  world.all_reduce(sum);  // nodes may differ: the world's peak is the sum of its ranks'
  p.world = sum.item<double>();
  return p;
}

}  // namespace

std::string cpu_peak_cache_path() {
  if (const char* path = std::getenv("REEL_CPU_PEAK_CACHE"); path && *path) return path;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/reel/cpu_peak.ini";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/reel/cpu_peak.ini";
}

std::string cpu_peak_key(const std::string& cpu_model, int cores, at::ScalarType dtype, const Shapes& shapes) {
  std::string model = cpu_model;
  for (char& c : model) {
    if (c == '[' || c == ']' || c == '\n' || c == '\r' || c == '=') c = ' ';
  }
  std::string key =
      "cpu=" + trim(model) + "; cores=" + std::to_string(cores) + "; dtype=" + c10::toString(dtype) + "; gemm=";
  for (size_t i = 0; i < shapes.size(); ++i) {
    key += (i ? "," : "") + std::to_string(shapes[i][0]) + "x" + std::to_string(shapes[i][1]) + "x" +
           std::to_string(shapes[i][2]);
  }
  return key;
}

HostPeak cached_host_peak(const std::string& path, const std::string& key, int cores,
                          const std::function<double()>& measure) {
  HostPeak h;
  h.path = path;
  auto entries = read_cache(path, h.warnings);
  auto mine = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.key == key; });
  if (mine != entries.end()) {
    const double flops = std::strtod(mine->get("flops").c_str(), nullptr);
    const int recorded_cores = std::atoi(mine->get("cores").c_str());
    if (std::isfinite(flops) && flops > 0 && recorded_cores == cores) {
      h.flops = flops;
      h.measured = mine->get("measured");
      h.cores = cores;
      h.from_cache = true;
      return h;
    }
    h.warnings.push_back(path + " [" + key + "]: flops \"" + mine->get("flops") + "\" is not a positive number, or " +
                         "cores \"" + mine->get("cores") + "\" is not " + std::to_string(cores) +
                         "; measuring the peak again");
    entries.erase(mine);
  }
  h.flops = measure();
  h.measured = now_text();
  h.cores = cores;
  std::ostringstream flops;
  flops.precision(6);
  flops << h.flops;
  h.flops = std::strtod(flops.str().c_str(), nullptr);  // as recorded: this run and later ones divide by one figure
  // Written under a lock, from the file as it is now: the ranks of other nodes sharing
  // this home directory may have added their own hosts' entries meanwhile.
  const Entry entry{key, {{"flops", flops.str()}, {"measured", h.measured}, {"cores", std::to_string(cores)}}};
  h.not_recorded = add_to_cache(path, entry);
  if (!h.not_recorded.empty()) {
    h.warnings.push_back("the CPU peak was measured but not recorded: " + h.not_recorded +
                         "; the next run measures it again (set REEL_CPU_PEAK_CACHE to a writable file)");
  }
  return h;
}

PeakFlops peak_flops(const ProcessMesh& mesh, const ModelConfig& cfg, int64_t rows, at::ScalarType dtype,
                     const at::Device& device, double stated) {
  PeakFlops p;
  if (stated > 0) {
    p = {stated, 0, "run.peak_flops", {}};
  } else if (device.is_cuda()) {  // the published dense peaks of an H100/H200 SXM (state others with run.peak_flops)
    const bool half = dtype == at::kBFloat16 || dtype == at::kHalf;
    p = half ? PeakFlops{989e12, 0, "dense bf16/fp16 tensor cores of an H100/H200 SXM", {}}
             : PeakFlops{67e12, 0, "fp32 (no TF32) of an H100/H200 SXM", {}};
  } else {
    return cpu_peak(mesh, cfg, rows, dtype);
  }
  p.world = p.per_rank * mesh.world_size();
  return p;
}

}  // namespace reel
