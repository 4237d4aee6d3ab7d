#include "launch/train_config.hpp"

#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>

namespace po = boost::program_options;

namespace reel {
namespace {

po::options_description describe(TrainConfig& c, std::string& preset, std::string& config_file) {
  po::options_description d("reel train options (INI sections = the part before the dot)");
  d.add_options()("help,h", "show this help")("config", po::value(&config_file), "INI configuration file")(
      "model.preset", po::value(&preset)->default_value("tiny"), "tiny | small | 1b | 7b")(
      "model.attention", po::value(&c.model.attention)->default_value("causal"), "full | causal")(
      "model.mlp", po::value(&c.model.mlp)->default_value("gelu"), "gelu | swiglu")(
      "model.depth", po::value(&c.model.depth)->default_value(0), "blocks (0: the preset's)")(
      "model.dim", po::value(&c.model.dim)->default_value(0), "width (0: the preset's)")(
      "data.path", po::value(&c.data), "HDF5 video file (reel data writes one)")(
      "data.global_batch", po::value(&c.global_batch)->default_value(16), "clips per step over all ranks")(
      "data.micro_batches", po::value(&c.micro_batches)->default_value(1), "gradient accumulation steps")(
      "data.eval_clips", po::value(&c.eval_clips)->default_value(16), "last clips of the file held out")(
      "data.seed", po::value(&c.data_seed)->default_value(0), "shuffling seed")(
      "parallel.dp", po::value(&c.dp)->default_value(0), "data-parallel degree (0: world / sp)")(
      "parallel.sp", po::value(&c.sp)->default_value(1), "sequence-parallel degree")(
      "parallel.checkpoint", po::value(&c.parallel.checkpoint.mode)->default_value("none"), "none | full | every")(
      "parallel.checkpoint_every", po::value(&c.parallel.checkpoint.every)->default_value(2), "k for 'every'")(
      "parallel.shard_group", po::value(&c.parallel.shard_group)->default_value(0), "HSDP group size (0: FSDP)")(
      "parallel.reshard_after_forward", po::value(&c.parallel.fsdp.reshard_after_forward)->default_value(true), "ZeRO-3 (true) or keep until backward")(
      "parallel.prefetch", po::value(&c.parallel.fsdp.prefetch)->default_value(true), "prefetch the next unit's all-gather")(
      "parallel.param_dtype", po::value(&c.param_dtype)->default_value("auto"), "gather/compute dtype: auto (bfloat16 on GPU, float32 on CPU) | float32 | bfloat16")(
      "parallel.reduce_dtype", po::value(&c.reduce_dtype)->default_value("float32"), "gradient reduce-scatter dtype")(
      "parallel.max_gathered", po::value(&c.parallel.fsdp.max_gathered)->default_value(2), "gathered units in flight")(
      "optim.lr", po::value(&c.schedule.lr)->default_value(2e-3), "peak learning rate")(
      "optim.warmup", po::value(&c.schedule.warmup_steps)->default_value(50), "linear warm-up steps")(
      "optim.decay", po::value(&c.schedule.decay)->default_value("cosine"), "cosine | constant")(
      "optim.min_ratio", po::value(&c.schedule.min_ratio)->default_value(0.1), "final lr / peak lr")(
      "optim.weight_decay", po::value(&c.adamw.weight_decay)->default_value(0.0), "AdamW weight decay")(
      "optim.beta1", po::value(&c.adamw.beta1)->default_value(0.9), "AdamW beta1")(
      "optim.beta2", po::value(&c.adamw.beta2)->default_value(0.99), "AdamW beta2")(
      "optim.clip", po::value(&c.clip)->default_value(1.0), "gradient-norm clip (<= 0: off)")(
      "run.steps", po::value(&c.steps)->default_value(200), "optimizer steps")(
      "run.dir", po::value(&c.dir)->default_value("runs/latest"), "run directory (logs, metrics.jsonl, model.pt)")(
      "run.seed", po::value(&c.seed)->default_value(0), "initialisation and noise seed")(
      "run.log_every", po::value(&c.log_every)->default_value(10), "progress line every N steps")(
      "run.eval_every", po::value(&c.eval_every)->default_value(50), "held-out evaluation every N steps (0: off)")(
      "run.peak_flops", po::value(&c.peak_flops)->default_value(0), "peak FLOP/s per rank for MFU (0: default)")(
      "dist.backend", po::value(&c.runtime.backend)->default_value("auto"), "auto | mpi | nccl")(
      "dist.threads", po::value(&c.runtime.threads)->default_value(0), "intra-op threads per rank (0: auto)")(
      "log.level", po::value(&c.log.level)->default_value("info"), "log level")(
      "log.all_ranks", po::value(&c.log.all_ranks)->default_value(false), "every rank prints");
  return d;
}

}  // namespace

bool parse_train_config(int argc, char** argv, TrainConfig& c) {
  std::string preset, config_file;
  auto desc = describe(c, preset, config_file);
  po::variables_map vm;
  // The command line first: its values win over the file's.
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  if (vm.count("config")) {
    std::ifstream in(vm["config"].as<std::string>());
    if (!in) throw std::invalid_argument("cannot read config file " + vm["config"].as<std::string>());
    po::store(po::parse_config_file(in, desc), vm);
  }
  po::notify(vm);
  const auto attention = c.model.attention, mlp = c.model.mlp;
  const int64_t depth = c.model.depth, dim = c.model.dim;
  c.model = model_preset(preset);
  c.model.attention = attention;
  c.model.mlp = mlp;
  if (depth < 0 || dim < 0) throw std::invalid_argument("model.depth and model.dim must be >= 0");
  if (depth > 0) c.model.depth = depth;
  if (dim > 0) c.model.dim = dim;
  c.schedule.total_steps = c.steps;
  return true;
}

void validate_train_config(const TrainConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
  };
  c.model.validate();
  c.adamw.validate();
  c.schedule.validate();
  c.parallel.checkpoint.validate();
  check_level(c.log.level);
  parse_backend(c.runtime.backend);
  need(!c.data.empty(), "data.path is required (reel data --out FILE writes the physics world)");
  need(c.global_batch >= 1, "data.global_batch must be >= 1, got " + std::to_string(c.global_batch));
  need(c.micro_batches >= 1 && c.global_batch % c.micro_batches == 0,
       "data.micro_batches must divide data.global_batch " + std::to_string(c.global_batch));
  need(c.eval_clips >= 0, "data.eval_clips must be >= 0");
  need(c.steps >= 1, "run.steps must be >= 1");
  need(c.log_every >= 1 && c.eval_every >= 0, "run.log_every must be >= 1 and run.eval_every >= 0");
  need(c.dp >= 0 && c.sp >= 1, "parallel.dp must be >= 0 and parallel.sp >= 1");
  need(c.peak_flops >= 0, "run.peak_flops must be >= 0");
  if (c.param_dtype != "auto") parse_dtype(c.param_dtype);
  parse_dtype(c.reduce_dtype);
}

}  // namespace reel
