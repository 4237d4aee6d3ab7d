// `reel sample`: rolls a trained model out on held-out clips and writes PNG grids —
// rows context | predicted | ground truth, columns time. The model's architecture comes
// from the weights file itself.
#include <boost/program_options.hpp>

#include <iostream>

#include "data/samples.hpp"
#include "data/video_file.hpp"
#include "data/weights.hpp"
#include "launch/command.hpp"
#include "launch/options.hpp"

namespace po = boost::program_options;

namespace reel {

int run_sample(int argc, char** argv) {
  std::string weights, data, out = "samples";
  int64_t first = -1, count = 4, steps = 10, zoom = 4;
  uint64_t seed = 0;
  po::options_description desc("reel sample options");
  desc.add_options()("help,h", "show this help")(
      "weights", po::value(&weights)->required(), "weights file (reel train writes RUN_DIR/model.h5)")(
      "data", po::value(&data)->required(), "HDF5 video file")(
      "first", po::value(&first)->default_value(first), "first clip (-1: the last `count` clips)")(
      "count", po::value(&count)->default_value(count), "number of clips")(
      "steps", po::value(&steps)->default_value(steps), "Euler steps per frame-group")(
      "zoom", po::value(&zoom)->default_value(zoom), "pixel zoom of the pictures")(
      "seed", po::value(&seed)->default_value(seed), "noise seed")(
      "out", po::value(&out)->default_value(out), "output directory");
  if (!parse_options(argc, argv, desc)) return 0;
  if (steps < 1) throw std::invalid_argument("--steps must be >= 1");
  if (count < 1) throw std::invalid_argument("--count must be >= 1");
  const ModelConfig cfg = read_weights_config(weights);
  if (cfg.attention != "causal") {
    throw std::invalid_argument("weights file " + weights + ": the model has " + cfg.attention +
                                " attention; rolling out needs a frame-causal model (model.attention causal)");
  }
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true});
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
