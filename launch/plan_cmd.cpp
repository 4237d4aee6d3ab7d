// `reel plan`: every layout of a training configuration on a cluster (a preset, with any
// figure overridden), estimated from shapes: memory per device, step time, tokens/s, MFU;
// the layouts that fit, fastest first, and why the others do not. One process, no MPI, no
// data file read, no parameters allocated.
#include <boost/program_options.hpp>

#include <cmath>
#include <iostream>

#include "reel/launch/command.hpp"
#include "reel/launch/options.hpp"
#include "reel/plan/search.hpp"

namespace po = boost::program_options;

namespace reel {
namespace {

// Cluster overrides from the command line; each one given is checked as it is parsed
// (positive, finite), one not given leaves the preset's.
struct ClusterOptions {
  std::string preset = "h100";
  int gpus = 0, nodes = 0, gpus_per_node = 0;  // 0: not given
  double memory_gb = -1, reserve_gb = -1, intra_gbs = -1, inter_gbs = -1, intra_us = -1, inter_us = -1;
  double peak_tflops = -1, efficiency = -1;  // < 0: not given

  Cluster resolve() const {
    Cluster c = cluster_preset(preset);
    if (gpus > 0 && nodes > 0) throw std::invalid_argument("give --gpus or --nodes, not both");
    if (gpus_per_node > 0) c.gpus_per_node = gpus_per_node;
    if (gpus > 0) {
      if (gpus < c.gpus_per_node) {
        if (gpus_per_node > 0) {
          throw std::invalid_argument("--gpus " + std::to_string(gpus) + " is fewer than --gpus-per-node " +
                                      std::to_string(gpus_per_node));
        }
        c.gpus_per_node = gpus;  // part of one node
      }
      if (gpus % c.gpus_per_node != 0) {
        throw std::invalid_argument("--gpus " + std::to_string(gpus) + " is not a whole number of " +
                                    std::to_string(c.gpus_per_node) + "-device nodes");
      }
      c.nodes = gpus / c.gpus_per_node;
    }
    if (nodes > 0) c.nodes = nodes;
    auto set = [](double v, double scale, double& field) {
      if (v >= 0) field = v * scale;
    };
    set(memory_gb, 1e9, c.memory_bytes);
    set(reserve_gb, 1e9, c.reserve_bytes);
    set(intra_gbs, 1e9, c.intra_bw);
    set(inter_gbs, 1e9, c.inter_bw);
    set(intra_us, 1e-6, c.intra_latency);
    set(inter_us, 1e-6, c.inter_latency);
    set(peak_tflops, 1e12, c.peak_flops);
    set(efficiency, 1, c.efficiency);
    c.validate();
    return c;
  }
};

// A value option that must be > 0 (or >= 0 with zero_ok) and finite when given.
template <typename T>
po::typed_value<T>* checked(T* target, const char* name, bool zero_ok = false) {
  return po::value(target)->notifier([name, zero_ok](const T& v) {
    const double x = static_cast<double>(v);
    if (!std::isfinite(x) || x < 0 || (x == 0 && !zero_ok)) {
      throw std::invalid_argument(std::string("--") + name + " must be a " + (zero_ok ? "non-negative" : "positive") +
                                  " number, got " + std::to_string(x));
    }
  });
}

void add_cluster_options(po::options_description& desc, ClusterOptions& k) {
  desc.add_options()("cluster", po::value(&k.preset)->default_value(k.preset),
                     "preset: h100 | h200 (8-GPU HGX nodes) | cpu (2-core node)")(
      "gpus", checked(&k.gpus, "gpus"), "devices in all (whole nodes; fewer than a node: part of one)")(
      "nodes", checked(&k.nodes, "nodes"), "nodes")("gpus-per-node", checked(&k.gpus_per_node, "gpus-per-node"),
                                                    "devices (ranks) per node")(
      "memory-gb", checked(&k.memory_gb, "memory-gb"), "memory per device (GB)")(
      "reserve-gb", checked(&k.reserve_gb, "reserve-gb", true), "memory per device taken before training (GB)")(
      "intra-gbs", checked(&k.intra_gbs, "intra-gbs"), "bus bandwidth inside a node (GB/s per device)")(
      "inter-gbs", checked(&k.inter_gbs, "inter-gbs"), "bus bandwidth across nodes (GB/s per device)")(
      "intra-latency-us", checked(&k.intra_us, "intra-latency-us", true), "latency per round inside a node (us)")(
      "inter-latency-us", checked(&k.inter_us, "inter-latency-us", true), "latency per round across nodes (us)")(
      "peak-tflops", checked(&k.peak_tflops, "peak-tflops"), "peak per GPU (per node on cpu), TFLOP/s")(
      "efficiency", checked(&k.efficiency, "efficiency"), "fraction of the peak a step's FLOPs run at, (0, 1]");
}

// The training keys the estimate depends on: the model, the batch and its split, the
// layout. data.path is not read (a plan needs no data).
bool plan_uses(const std::string& key) {
  auto starts = [&](const char* prefix) { return key.rfind(prefix, 0) == 0; };
  return starts("model.") || starts("parallel.") || key == "data.global_batch" || key == "data.micro_batches" ||
         key == "data.micro_batch" || key == "data.eval_clips";
}

}  // namespace

int run_plan(int argc, char** argv) {
  TrainConfig c;
  ClusterOptions k;
  std::string config_file;
  bool json = false, given = false;
  int top = 10;
  po::options_description desc(
      "reel plan [CONFIG.ini] [--key value ...] [--cluster h100|h200|cpu] [--gpus N]\n"
      "Reads reel train's configuration (its INI file, or the same command line) and estimates from the model,\n"
      "the batch and the layout: by default every layout of that job on the cluster; --given the configuration's\n"
      "own. Training keys that do not change the estimate (optim.*, run.*, checkpoint.*, dist.*, log.*) are\n"
      "accepted and ignored, and not listed here");
  desc.add_options()("help,h", "show this help")("config", po::value(&config_file), "INI configuration file");
  add_cluster_options(desc, k);
  desc.add_options()("given", po::bool_switch(&given), "estimate the configuration's layout only")(
      "top", checked(&top, "top")->default_value(top), "layouts listed (text output)")(
      "json", po::bool_switch(&json), "print JSON (every layout, with its memory, times and bytes)");
  po::options_description ignored;  // parsed (a train INI file reads as it is), never listed
  visit_train_options(c, [&](const std::string& key, auto& field, const char* help) {
    plan_uses(key) ? OptionAdder(desc)(key, field, help) : OptionAdder(ignored)(key, field, help);
  });
  po::options_description all;
  all.add(desc).add(ignored);
  if (!parse_options(argc, argv, all, "config", &desc)) return 0;
  if (c.data.path.empty()) c.data.path = "(not read by reel plan)";
  c.resolve();
  const Cluster cluster = k.resolve();
  const Plan plan = make_plan(c, cluster, given);
  if (json) {
    std::cout << plan_json(plan).dump(1) << "\n";
  } else {
    std::cout << plan_text(plan, static_cast<size_t>(top));
  }
  return 0;
}

}  // namespace reel
