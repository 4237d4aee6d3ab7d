// Peak memory of building a sharded model: each rank measures its resident high-water
// mark while it builds the model's structure (deferred: no parameter memory) and lets
// FSDP materialise its shards. Compares it with what a rank holds afterwards (parameter
// + gradient shards) and with the whole model in fp32, which every rank used to build
// first.
//   mpirun -np N reel_construct_bench [--preset 1b] [--depth 0] [--optimizer]
#include <boost/program_options.hpp>

#include <iostream>

#include "reel/dist/runtime.hpp"
#include "reel/model/world_model.hpp"
#include "reel/optim/adamw.hpp"
#include "reel/parallel/parallelize.hpp"
#include "reel/train/memory.hpp"

namespace po = boost::program_options;
using namespace reel;

int main(int argc, char** argv) {
  std::string preset = "1b";
  int64_t depth = 0;
  bool optimizer = false;
  po::options_description desc("reel_construct_bench options");
  desc.add_options()("help,h", "show this help")("preset", po::value(&preset)->default_value(preset), "model preset")(
      "depth", po::value(&depth)->default_value(depth), "blocks (0: the preset's)")(
      "optimizer", po::bool_switch(&optimizer), "also allocate AdamW's moments");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  po::notify(vm);
  RuntimeConfig rc;
  rc.backend = BackendKind::kMpi;
  Runtime runtime(rc);
  ModelConfig cfg = model_preset(preset);
  if (depth > 0) cfg.depth = depth;
  auto mesh = ProcessMesh::create(runtime.world(), MeshConfig{});
  auto& world = mesh.world();
  world.barrier();
  if (!reset_peak_resident()) std::cerr << "warning: cannot reset the resident high-water mark\n";
  const int64_t before = resident_bytes();
  WorldModel model(cfg, ParamInit{at::kCPU, /*deferred=*/true, 1});
  auto fsdp = parallelize(*model, mesh, ParallelConfig{}, 1).fsdp;
  FlatAdamW opt(AdamWConfig{});
  if (optimizer) {
    for (auto& u : fsdp->units()) opt.add(u->shard(), at::ones({u->layout().shard}, at::kFloat));
  }
  const double peak = double(peak_resident_bytes() - before), held = double(resident_bytes() - before);
  int64_t params = 0, unit = 0;
  for (auto& u : fsdp->units()) {
    params += u->layout().numel;
    unit = std::max(unit, u->layout().padded);
  }
  // Every rank's figures, gathered to rank 0 in rank order.
  auto mine = at::empty({3}, at::kDouble);
  mine[0] = peak;
  mine[1] = held;
  mine[2] = double(fsdp->shard_bytes());
  auto all = at::empty({3 * world.size()}, at::kDouble);
  world.all_gather(mine, all);
  if (world.rank() == 0) {
    const double gib = double(1 << 30);
    std::cout << preset << " (" << cfg.depth << " blocks, " << params / 1e9 << "B parameters, whole model "
              << 4.0 * params / gib << " GiB fp32, largest unit " << 4.0 * unit / gib << " GiB) at " << world.size()
              << " rank(s)" << (optimizer ? " with AdamW moments" : "") << "\n";
    for (int r = 0; r < world.size(); ++r) {
      const auto* v = all.data_ptr<double>() + 3 * r;
      std::cout << "  rank " << r << ": construction peak " << v[0] / gib << " GiB, held after " << v[1] / gib
                << " GiB, parameter + gradient shards " << v[2] / gib << " GiB\n";
    }
  }
  return 0;
}
