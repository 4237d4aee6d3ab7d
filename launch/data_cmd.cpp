// `reel data`: writes the synthetic physics world in reel's HDF5 video schema.
#include <boost/program_options.hpp>

#include <iostream>

#include "launch/command.hpp"
#include "model/physics_world.hpp"

namespace po = boost::program_options;

namespace reel {

int run_data(int argc, char** argv) {
  PhysicsWorldSpec s;
  std::string out;
  po::options_description desc("reel data options (the physics world: balls under gravity, one agent ball)");
  desc.add_options()("help,h", "show this help")(
      "out", po::value(&out)->required(), "output HDF5 file")(
      "clips", po::value(&s.clips)->default_value(s.clips), "number of clips")(
      "frames", po::value(&s.frames)->default_value(s.frames), "frames per clip (T)")(
      "height", po::value(&s.height)->default_value(s.height), "frame height (H)")(
      "width", po::value(&s.width)->default_value(s.width), "frame width (W)")(
      "balls", po::value(&s.balls)->default_value(s.balls), "balls, including the agent")(
      "radius", po::value(&s.radius)->default_value(s.radius), "ball radius in pixels at 32x32")(
      "gravity", po::value(&s.gravity)->default_value(s.gravity), "pixels / frame^2 at 32x32")(
      "seed", po::value(&s.seed)->default_value(s.seed), "the world's seed")(
      "fps", po::value(&s.fps)->default_value(s.fps), "frame rate recorded in the file");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  po::notify(vm);
  write_physics_world(out, s);
  std::cout << "reel data: wrote " << s.clips << " clips of " << s.frames << "x" << s.height << "x" << s.width
            << " to " << out << "\n";
  return 0;
}

}  // namespace reel
