// `reel ckpt list|verify|inspect|export`: state checkpoints from the command line.
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "reel/checkpoint/export.hpp"
#include "reel/dist/logging.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace reel {
namespace {

int64_t directory_bytes(const fs::path& dir) {
  int64_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += static_cast<int64_t>(e.file_size());
  }
  return bytes;
}

// A run directory or its checkpoints/ directory: one line per checkpoint, oldest first.
int list(const std::string& where) {
  fs::path root = fs::is_directory(fs::path(where) / "checkpoints") ? fs::path(where) / "checkpoints" : fs::path(where);
  if (!fs::is_directory(root)) throw std::invalid_argument(where + ": no such directory");
  std::vector<std::pair<std::string, fs::path>> entries;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && (checkpoint_step(name) >= 0 || name.rfind(".tmp_", 0) == 0))
      entries.emplace_back(name, e.path());
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    auto key = [](const std::string& n) { return n.rfind(".tmp_", 0) == 0 ? n.substr(5) : n; };
    return key(a.first) < key(b.first);
  });
  std::cout << pad("checkpoint", 22) << pad("size (MiB)", -12) << "  state\n";
  for (const auto& [name, path] : entries) {
    std::string state = "complete";
    if (checkpoint_step(name) < 0) {
      state = "partial (a save that did not finish)";
    } else {
      try {
        CheckpointReader reader(path.string());
        state = "complete: " + std::to_string(reader.manifest().world_size) + " rank file(s), step " +
                std::to_string(reader.manifest().state.step);
      } catch (const std::exception& e) {
        state = std::string("incomplete or damaged: ") + e.what();
      }
    }
    std::cout << pad(name, 22) << pad(fixed(directory_bytes(path) / double(1 << 20), 1), -12) << "  " << state << "\n";
  }
  return 0;
}

int verify(const std::string& dir) {
  CheckpointReader reader(dir);
  const auto problems = reader.verify();
  for (const auto& p : problems) std::cout << "reel ckpt verify: " << p << "\n";
  if (!problems.empty()) throw std::runtime_error(dir + ": " + std::to_string(problems.size()) + " problem(s) found");
  size_t datasets = 0;
  for (const auto& f : reader.manifest().files) datasets += f.datasets.size();
  std::cout << "reel ckpt verify: " << dir << " is complete: " << reader.manifest().files.size() << " rank file(s), "
            << datasets << " datasets, every checksum matches\n";
  return 0;
}

int inspect(const std::string& dir) {
  CheckpointReader reader(dir);
  const auto& m = reader.manifest();
  const auto s = reader.state();
  std::cout << dir << ": step " << s.step << ", saved by " << m.world_size << " rank(s) with reel " << m.reel_version
            << "; model " << s.model.name() << " (dim " << s.model.dim << ", depth " << s.model.depth << ", "
            << s.model.attention << " attention); data epoch " << s.data.epoch << ", cursor " << s.data.cursor
            << "; AdamW step " << s.optimizer_steps << "\n";
  for (const auto& t : summarize(reader)) {
    std::ostringstream shape;
    shape << at::IntArrayRef(t.shape);
    std::cout << "  " << pad(t.kind + "/" + t.param, 40) << pad(shape.str(), 16) << " float32  min " << t.min
              << "  max " << t.max << "  mean " << t.mean << "\n";
  }
  return 0;
}

// verify, inspect and export take a checkpoint directory, or a run directory (or its
// checkpoints/) for its newest complete checkpoint, which is then named: a reader need
// not know the step a run ended at. A directory holding neither is an error naming both.
std::string checkpoint_dir(const std::string& where) {
  if (fs::exists(fs::path(where) / "manifest.json")) return where;
  const fs::path root =
      fs::is_directory(fs::path(where) / "checkpoints") ? fs::path(where) / "checkpoints" : fs::path(where);
  if (!fs::is_directory(root)) throw std::invalid_argument(where + ": no such directory");
  int64_t newest = -1;
  fs::path found;
  for (const auto& e : fs::directory_iterator(root)) {
    const int64_t step = checkpoint_step(e.path().filename().string());
    if (step > newest && fs::exists(e.path() / "manifest.json")) newest = step, found = e.path();
  }
  if (newest < 0) {
    throw std::invalid_argument(where +
                                " is neither a checkpoint (no manifest.json) nor a run directory with a "
                                "complete checkpoint (reel ckpt list " +
                                where + " shows what it holds)");
  }
  std::cerr << "reel ckpt: " << where << ": its newest complete checkpoint, " << found.string() << "\n";
  return found.string();
}

}  // namespace

int run_ckpt(int argc, char** argv) {
  std::string action, path, out;
  po::options_description desc(
      "reel ckpt list RUN_DIR | verify CKPT | inspect CKPT | export CKPT --out FILE.h5|FILE.safetensors\n"
      "CKPT: a checkpoint directory (RUN_DIR/checkpoints/step_N), or a run directory for its newest complete one");
  desc.add_options()("help,h", "show this help")("action", po::value(&action), "list | verify | inspect | export")(
      "path", po::value(&path), "a run directory, or (verify, inspect, export) a checkpoint directory")(
      "out", po::value(&out), "export: the file to write (.h5: reel weights; .safetensors)");
  po::positional_options_description positional;
  positional.add("action", 1).add("path", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).run(), vm);
    if (vm.count("help") || argc < 2) {
      std::cout << desc << "\n";
      return vm.count("help") ? 0 : 2;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  if (path.empty()) throw UsageError("reel ckpt " + action + ": a directory is required");
  if (action == "list") return list(path);
  if (action != "verify" && action != "inspect" && action != "export") {
    throw UsageError("unknown reel ckpt action '" + action + "' (list, verify, inspect, export)");
  }
  path = checkpoint_dir(path);
  if (action == "verify") return verify(path);
  if (action == "inspect") return inspect(path);
  CheckpointReader reader(path);
  if (out.size() > 12 && out.substr(out.size() - 12) == ".safetensors") {
    export_safetensors(reader, out);
  } else if (out.size() > 3 && out.substr(out.size() - 3) == ".h5") {
    export_weights(reader, out);
  } else {
    throw std::invalid_argument("reel ckpt export: --out must end in .h5 or .safetensors, got '" + out + "'");
  }
  std::cout << "reel ckpt export: wrote " << out << "\n";
  return 0;
}

}  // namespace reel
