// `reel data`: writes the synthetic physics world in reel's HDF5 video schema.
#include <boost/program_options.hpp>

#include <iostream>

#include "launch/command.hpp"
#include "launch/options.hpp"
#include "data/physics_world.hpp"
#include "data/video_file.hpp"

namespace po = boost::program_options;

namespace reel {

int run_data(int argc, char** argv) {
  PhysicsWorldSpec s;
  std::string out, inspect;
  po::options_description desc("reel data options (the physics world: balls under gravity, one agent ball)");
  desc.add_options()("help,h", "show this help")(
      "out", po::value(&out), "output HDF5 file")(
      "inspect", po::value(&inspect), "check FILE against the schema and describe it (writes nothing)")(
      "clips", po::value(&s.clips)->default_value(s.clips), "number of clips")(
      "frames", po::value(&s.frames)->default_value(s.frames), "frames per clip (T)")(
      "height", po::value(&s.height)->default_value(s.height), "frame height (H)")(
      "width", po::value(&s.width)->default_value(s.width), "frame width (W)")(
      "balls", po::value(&s.balls)->default_value(s.balls), "balls, including the agent")(
      "radius", po::value(&s.radius)->default_value(s.radius), "ball radius in pixels at 32x32")(
      "gravity", po::value(&s.gravity)->default_value(s.gravity), "pixels / frame^2 at 32x32")(
      "seed", po::value(&s.seed)->default_value(s.seed), "the world's seed")(
      "fps", po::value(&s.fps)->default_value(s.fps), "frame rate recorded in the file");
  if (!parse_options(argc, argv, desc)) return 0;
  if (!inspect.empty()) {
    VideoReader reader(inspect);
    const auto& i = reader.info();
    std::cout << inspect << ": " << i.clips << " clips of " << i.frames << "x" << i.height << "x" << i.width
              << "x" << i.channels << " (T x H x W x C), " << i.action_dim << " action dims, fps " << i.fps
              << ", schema " << kVideoSchemaVersion << "\n";
    return 0;
  }
  if (out.empty()) throw std::invalid_argument("reel data: --out FILE (or --inspect FILE) is required");
  write_physics_world(out, s);
  std::cout << "reel data: wrote " << s.clips << " clips of " << s.frames << "x" << s.height << "x" << s.width
            << " to " << out << "\n";
  return 0;
}

}  // namespace reel
