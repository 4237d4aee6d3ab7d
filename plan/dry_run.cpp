#include "reel/plan/dry_run.hpp"

#include <filesystem>
#include <sstream>

#include "reel/data/video_file.hpp"
#include "reel/dist/logging.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/parallel/sequence/layout.hpp"
#include "reel/plan/estimate.hpp"
#include "reel/train/model_spec.hpp"
#include "reel/train/throughput.hpp"

namespace reel {
namespace {

std::string gib(double bytes) {
  const double mib = bytes / double(1 << 20);
  return mib < 1024 ? fixed(mib, 1) + " MiB" : fixed(mib / 1024, 2) + " GiB";
}

std::string members(const std::vector<int>& ranks) {
  std::ostringstream out;
  for (size_t i = 0; i < ranks.size(); ++i) out << (i ? "," : "") << ranks[i];
  return out.str();
}

}  // namespace

std::string dry_run_report(const TrainConfig& config, const CommunicatorPtr& world) {
  TrainConfig c = config;
  // The layout needs no data: a file not written yet is said, not an error; one that is
  // there is checked against the model as training would.
  const bool have_data = std::filesystem::exists(c.data.path);
  const ModelSpec& spec = model_spec(c.model.family);
  std::string data_line = c.data.path + " (not there yet: reel data --out " + c.data.path + " writes it; not checked)";
  if (have_data) {
    const DataFileInfo data = spec.check_data(c.model, c.data.path);
    data_line = c.data.path + ", " + std::to_string(data.samples) + (spec.family() == "world" ? " clips" : " samples");
  }
  const int u = c.parallel.sequence.ulysses_degree(c.mesh.sp);
  const auto mesh = ProcessMesh::create(world, c.mesh, u);
  c.data.resolve_micro_batches(mesh.dp());
  check_sequence_split(c.model.sequence_shape(), mesh.sp() / u, u, c.parallel.sequence);
  const auto layout = SequenceLayout::create(c.model.tokens(), mesh.sp() / u, u, c.parallel.sequence.balance);
  const ModelShape shape = ModelShape::of(c.model);  // the model's structure only (deferred)
  const auto flops = step_flops(spec, c.model, c.data.global_batch, c.parallel.activation_checkpoint);
  // Memory from the planner's model (plan/estimate.hpp), for this world on this machine.
  Cluster here = cluster_preset(mesh.world().device().is_cuda() ? "h100" : "cpu");
  here.nodes = mesh.nodes();
  // The planner places ranks node by node, as many on each: the largest node's count.
  here.gpus_per_node = (mesh.world_size() + mesh.nodes() - 1) / mesh.nodes();
  const auto mem = estimate(c, mesh.world_size(), here, shape);
  std::ostringstream out;
  out << "reel train --dry-run (nothing trained, no parameters allocated)\n"
      << "  " << mesh.describe() << "\n"
      << "  placement: " << mesh.placement() << "\n"
      << "  groups of rank " << mesh.world_rank() << ": dp {" << members(mesh.dp_members()) << "}, sp {"
      << members(mesh.sp_members()) << "}, ulysses " << mesh.ulysses() << ", ring " << mesh.ring() << ", shard group "
      << mesh.shard_group().size() << " rank(s), replicas " << mesh.replica_group().size() << "\n"
      << "  model " << c.model.name() << ": " << fixed(double(shape.parameters()) / 1e6, 2) << "M parameters, "
      << c.model.tokens() << " tokens per clip; sp rank 0 holds " << layout.count(0) << " of them ("
      << (mesh.sp() > 1 ? cat(c.parallel.sequence.mode, ", ", c.parallel.sequence.balance) : std::string("no split"))
      << ")\n"
      << "  step: " << c.data.global_batch << " clips (" << c.data.micro_batches << " micro-batch(es)), "
      << fixed(flops.model / 1e12, 3) << " TFLOP model, " << fixed(flops.hardware / 1e12, 3)
      << " TFLOP with recomputation\n"
      << "  memory per rank (estimated from shapes, not measured; reel plan has the model): shards + AdamW "
      << gib(mem.persistent) << ", gathered units " << gib(mem.gathered) << ", activations " << gib(mem.activations)
      << ", sequence buffers " << gib(mem.buffers) << ", total " << gib(mem.total() - mem.reserve) << "\n"
      << "  data: " << data_line << "\n";
  for (const auto& w : mesh.warnings()) out << "  warning: " << w << "\n";
  return out.str();
}

}  // namespace reel
