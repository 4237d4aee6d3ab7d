// `reel sample`: rolls a trained model out on held-out clips and writes PNG grids —
// rows context | predicted | ground truth, columns time.
#include <boost/program_options.hpp>

#include <iostream>

#include "launch/command.hpp"
#include "launch/options.hpp"
#include "model/video_file.hpp"
#include "model/weights.hpp"

namespace po = boost::program_options;

namespace reel {

int run_sample(int argc, char** argv) {
  std::string preset = "tiny", weights, data, out = "samples";
  int64_t first = -1, count = 4, steps = 10, zoom = 4;
  uint64_t seed = 0;
  po::options_description desc("reel sample options");
  desc.add_options()("help,h", "show this help")(
      "model.preset", po::value(&preset)->default_value(preset), "tiny | small | 1b | 7b")(
      "weights", po::value(&weights)->required(), "model weights file")(
      "data", po::value(&data)->required(), "HDF5 video file")(
      "first", po::value(&first)->default_value(first), "first clip (-1: the last `count` clips)")(
      "count", po::value(&count)->default_value(count), "number of clips")(
      "steps", po::value(&steps)->default_value(steps), "Euler steps per frame-group")(
      "zoom", po::value(&zoom)->default_value(zoom), "pixel zoom of the pictures")(
      "seed", po::value(&seed)->default_value(seed), "noise seed")(
      "out", po::value(&out)->default_value(out), "output directory");
  if (!parse_options(argc, argv, desc)) return 0;
  if (steps < 1) throw std::invalid_argument("--steps must be >= 1");
  const ModelConfig cfg = model_preset(preset);
  if (cfg.attention != "causal") throw std::invalid_argument("sampling needs a frame-causal model");
  WorldModel model(cfg);
  load_weights(*model, weights);
  model->eval();
  if (first < 0) first = VideoReader(data).info().clips - count;
  const auto report = write_samples(*model, data, first, count, out, steps, seed, zoom);
  for (const auto& f : report.files) std::cout << "reel sample: wrote " << f << "\n";
  std::cout << "reel sample: future-frame MSE " << report.model_mse << " (copy-last-frame baseline "
            << report.copy_last_mse << ")\n";
  return 0;
}

}  // namespace reel
