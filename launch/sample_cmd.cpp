// `reel sample`: rolls a trained model out on held-out clips, prints the world-model
// metrics (rollout MSE against copying the last frame, the agent's position error, how the
// agent follows reversed actions) and writes PNG grids that label themselves: rows
// "context" | "predicted" | "truth" | "reversed" (predicted under reversed actions) named
// in a left margin, columns numbered by frame (data/samples.hpp). The model's architecture
// comes from the weights file itself.
#include <boost/program_options.hpp>

#include <algorithm>
#include <iostream>

#include "reel/data/samples.hpp"
#include "reel/data/video_file.hpp"
#include "reel/data/weights.hpp"
#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"

namespace po = boost::program_options;

namespace reel {

int run_sample(int argc, char** argv) {
  std::string weights, data, out = "samples";
  int64_t first = -1, count = 64;
  SampleOptions opt;
  bool json = false;
  po::options_description desc("reel sample options");
  desc.add_options()("help,h", "show this help")("weights", po::value(&weights)->required(),
                                                 "weights file (reel train writes RUN_DIR/model.h5)")(
      "data", po::value(&data)->required(), "HDF5 video file")("first", po::value(&first)->default_value(first),
                                                               "first clip (-1: the last `count` clips)")(
      "count", po::value(&count)->default_value(count), "number of clips measured")(
      "pictures", po::value(&opt.pictures)->default_value(opt.pictures), "PNG grids for the first this many")(
      "steps", po::value(&opt.rollout.steps)->default_value(opt.rollout.steps), "Euler steps per frame-group")(
      "context-t", po::value(&opt.rollout.context_t)->default_value(opt.rollout.context_t),
      "flow time the history is shown at (a model trained with model.context_noise)")(
      "zoom", po::value(&opt.zoom)->default_value(opt.zoom), "pixel zoom of the pictures")(
      "seed", po::value(&opt.rollout.seed)->default_value(opt.rollout.seed), "noise seed")(
      "json", po::bool_switch(&json), "print the metrics as one JSON object")(
      "out", po::value(&out)->default_value(out), "output directory (OUT/sample_<clip>.png)");
  if (!parse_options(argc, argv, desc)) return 0;
  if (opt.rollout.steps < 1) throw std::invalid_argument("--steps must be >= 1");
  if (count < 1) throw std::invalid_argument("--count must be >= 1");
  if (opt.pictures < 0 || opt.zoom < 1) throw std::invalid_argument("--pictures must be >= 0 and --zoom >= 1");
  if (!(opt.rollout.context_t >= 0 && opt.rollout.context_t < 1)) {
    throw std::invalid_argument("--context-t must be in [0, 1)");
  }
  const ModelConfig cfg = read_weights_config(weights);
  if (cfg.family != "world") {
    throw std::invalid_argument("weights file " + weights + ": a model of model.family " + cfg.family +
                                "; reel sample rolls out world models (model.family world)");
  }
  if (cfg.attention != AttentionKind::kCausal) {
    throw std::invalid_argument("weights file " + weights + ": the model has " + enum_name(cfg.attention) +
                                " attention; rolling out needs a frame-causal model (model.attention causal)");
  }
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true});
  load_weights(*model, weights);
  model->eval();
  const int64_t clips = VideoReader(data).info().clips;
  if (first < 0) {  // the last `count` clips (all of a smaller file)
    count = std::min(count, clips);
    first = clips - count;
  }
  if (first + count > clips) {
    throw std::invalid_argument(data + ": clips [" + std::to_string(first) + ", " + std::to_string(first + count) +
                                ") are not in the file's " + std::to_string(clips));
  }
  const auto report = write_samples(*model, data, first, count, out, opt);
  if (json) {
    std::cout << "{\"clips\": " << count << ", " << report.metrics.json_fields() << "}\n";
    return 0;
  }
  for (const auto& f : report.files) std::cout << "reel sample: wrote " << f << "\n";
  std::cout << "reel sample: " << count << " clips from " << first << ", " << opt.rollout.steps
            << " Euler steps per frame-group\n"
            << report.metrics.summary() << "\n";
  return 0;
}

}  // namespace reel
