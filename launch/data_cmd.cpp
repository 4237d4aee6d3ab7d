// `reel data`: writes the synthetic physics world in reel's HDF5 video schema, or
// (--kind text) the language model's synthetic text corpus (lm/corpus.hpp).
#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <vector>

#include "reel/data/physics_world.hpp"
#include "reel/data/video_file.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"
#include "reel/lm/corpus.hpp"

namespace po = boost::program_options;

namespace reel {

namespace {

bool is_corpus(const std::string& path) {
  try {
    CorpusReader reader(path);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// --inspect of a text corpus: its shape, every sample read back (checksums), the first.
int inspect_corpus(const std::string& path) {
  CorpusReader reader(path);
  const auto& i = reader.info();
  std::cout << path << ": a text corpus of " << i.samples << " samples of " << i.seq_len << " tokens (+1), vocab "
            << i.vocab << ", schema " << kTextSchemaVersion << "\n";
  const std::string sha = reader.compute_content_sha256();  // reads every sample: checksums verified
  if (!i.content_sha256.empty() && sha != i.content_sha256) {
    throw std::runtime_error(path + ": the samples' SHA-256 differs from the stored content_sha256");
  }
  std::cout << path << ": every sample read back" << (i.checksums ? " and verified against its checksum" : "")
            << "; sample 0: \"" << decode_tokens(reader.read_samples({0}).at("tokens")) << "\"\n";
  return 0;
}

// --inspect: the schema, then every clip read back, which verifies its checksum.
int inspect_file(const std::string& path) {
  if (is_corpus(path)) return inspect_corpus(path);
  VideoReader reader(path);
  const auto& i = reader.info();
  std::cout << path << ": " << i.clips << " clips of " << i.frames << "x" << i.height << "x" << i.width << "x"
            << i.channels << " (T x H x W x C), " << i.action_dim << " action dims, fps " << i.fps << ", schema "
            << kVideoSchemaVersion << "\n"
            << std::flush;
  constexpr int64_t kBatch = 16;
  for (int64_t first = 0; first < i.clips; first += kBatch) {
    std::vector<int64_t> clips;
    for (int64_t c = first; c < std::min(i.clips, first + kBatch); ++c) clips.push_back(c);
    reader.read(clips);  // throws naming the clip that fails its checksum or cannot be read
  }
  if (i.checksums) {
    std::cout << path << ": every clip read back and verified against its checksum\n";
  } else {
    std::cout << path << ": every clip read back; warning: the file has no checksums (written before reel added "
              << "them), so damage to a clip cannot be detected; rewrite it with reel data --overwrite or "
              << "scripts/convert_videos.py\n";
  }
  return 0;
}

// What reel data writes (--kind).
enum class DataKind { kWorld, kText };
constexpr EnumNames<DataKind, 2> enum_names(DataKind) {
  return {{{DataKind::kWorld, "world"}, {DataKind::kText, "text"}}};
}

// The output's folder, made like mkdir -p (`reel data --out runs/world.h5` in a fresh
// clone); an existing file is kept unless the user asked to replace it: a mistyped --out
// must not destroy a data set that took hours to convert.
void prepare_output(const std::string& out, bool overwrite) {
  if (!overwrite && std::filesystem::exists(out)) {
    throw UsageError("reel data: " + out + " exists; --overwrite replaces it (or choose another --out)");
  }
  const auto folder = std::filesystem::path(out).parent_path();
  std::error_code ec;
  if (!folder.empty()) std::filesystem::create_directories(folder, ec);
  if (ec) throw std::runtime_error("reel data: cannot create the folder " + folder.string() + ": " + ec.message());
}

}  // namespace

int run_data(int argc, char** argv) {
  PhysicsWorldSpec s;
  CorpusSpec text;
  std::string out, inspect;
  bool overwrite = false;
  DataKind kind = DataKind::kWorld;
  po::options_description desc(
      "reel data options (world: the physics world, balls under gravity, one agent ball; text: sentences of an "
      "invented language for model.family lm)");
  const OptionAdder add(desc);
  desc.add_options()("help,h", "show this help");
  add("kind", kind, "world: video clips; text: a corpus for the language model");
  desc.add_options()("out", po::value(&out), "output HDF5 file")(
      "overwrite", po::bool_switch(&overwrite), "replace the --out file if it exists (refused otherwise)")(
      "inspect", po::value(&inspect), "check FILE against the schema and describe it (writes nothing)")(
      "clips", po::value(&s.clips)->default_value(s.clips), "number of clips")(
      "frames", po::value(&s.frames)->default_value(s.frames), "frames per clip (T)")(
      "height", po::value(&s.height)->default_value(s.height), "frame height (H)")(
      "width", po::value(&s.width)->default_value(s.width), "frame width (W)")(
      "balls", po::value(&s.balls)->default_value(s.balls), "balls, including the agent")(
      "radius", po::value(&s.radius)->default_value(s.radius), "ball radius in pixels at 32x32")(
      "gravity", po::value(&s.gravity)->default_value(s.gravity), "pixels / frame^2 at 32x32")(
      "fps", po::value(&s.fps)->default_value(s.fps), "frame rate recorded in the file")(
      "samples", po::value(&text.samples)->default_value(text.samples), "text: number of samples")(
      "seq-len", po::value(&text.seq_len)->default_value(text.seq_len),
      "text: tokens per sample (the model's seq_len)");
  add("seed", s.seed, "the world's (or the text's) seed");  // unsigned: -1 is refused, not wrapped
  if (!parse_options(argc, argv, desc)) return 0;
  if (!inspect.empty()) return inspect_file(inspect);
  if (out.empty()) throw UsageError("reel data: --out FILE (or --inspect FILE) is required");
  text.seed = s.seed;
  try {
    kind == DataKind::kWorld ? s.validate() : text.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  prepare_output(out, overwrite);
  if (kind == DataKind::kText) {
    write_corpus(out, text);
    std::cout << "reel data: wrote a text corpus of " << text.samples << " samples of " << text.seq_len
              << " tokens (+1) to " << out << " (each sample with its checksum)\n";
    return 0;
  }
  write_physics_world(out, s);
  std::cout << "reel data: wrote " << s.clips << " clips of " << s.frames << "x" << s.height << "x" << s.width << " to "
            << out << " (each clip with its checksum)\n";
  return 0;
}

}  // namespace reel
