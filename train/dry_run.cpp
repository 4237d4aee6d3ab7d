#include "train/dry_run.hpp"

#include <algorithm>
#include <sstream>

#include "data/video_file.hpp"
#include "dist/logging.hpp"
#include "dist/process_mesh.hpp"
#include "model/world_model.hpp"
#include "parallel/sequence/layout.hpp"
#include "train/throughput.hpp"

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

// Per-rank memory, estimated from the shapes (bytes).
struct MemoryEstimate {
  double persistent = 0;   // fp32 parameter and gradient shards, AdamW moments
  double gathered = 0;     // units gathered in flight (compute dtype) + one unreduced gradient buffer
  double activations = 0;  // what backward keeps for this rank's tokens of one micro-batch
};

MemoryEstimate estimate(const TrainConfig& c, WorldModelImpl& model, const ProcessMesh& mesh) {
  int64_t total = 0, largest_block = 0, root = 0;
  for (const auto& p : model.named_parameters()) {
    if (p.key().rfind("block", 0) != 0) root += p.value().numel();  // the root unit: all but the blocks
    total += p.value().numel();
  }
  if (!model.blocks().empty()) {
    for (const auto& p : model.blocks()[0]->parameters()) largest_block += p.numel();
  }
  const double param_bytes = c.parallel.fsdp.param_type(mesh.world().device()) == at::kFloat ? 4 : 2;
  const int shards = mesh.shard_group().size();
  MemoryEstimate m;
  m.persistent = 16.0 * double(total) / shards;  // master 4 + gradient 4 + two moments 8
  const int in_flight = c.parallel.fsdp.reshard_after_forward ? c.parallel.fsdp.max_gathered : int(c.model.depth);
  m.gathered = param_bytes * double(root + in_flight * largest_block) + 4.0 * double(std::max(root, largest_block));
  // Per block and token, a step's peak holds about 44 D-wide values (GELU; 52 with
  // SwiGLU): what backward keeps (inputs, norms, q/k/v and their rotations, attention
  // output, residuals, the MLP's hidden pair, the per-token modulations) plus transients;
  // 44 is the long_cpu preset's measured peak (docs/sequence-parallel.md: 5,888 tokens in
  // 128 MiB at depth 2, D = 64). Checkpointed blocks keep their input only, and one block
  // is recomputed at a time.
  const double tokens = double(c.data.micro_clips() / mesh.dp()) * double(c.model.tokens()) / mesh.sp();
  const double per_block = (c.model.mlp == "swiglu" ? 52 : 44) * tokens * double(c.model.dim) * param_bytes;
  const int64_t kept = c.model.depth - c.parallel.activation_checkpoint.recomputed_blocks(c.model.depth);
  const double inputs = tokens * double(c.model.dim) * param_bytes;
  m.activations = double(kept) * per_block + double(c.model.depth - kept) * inputs + (kept < c.model.depth ? per_block : 0);
  return m;
}

}  // namespace

std::string dry_run_report(const TrainConfig& c, const CommunicatorPtr& world) {
  const VideoFileInfo data = VideoReader(c.data.path).info();
  check_data_geometry(c.model, data.frames, data.height, data.width, data.channels, data.action_dim, c.data.path);
  const auto mesh = ProcessMesh::create(world, c.mesh);
  WorldModel model(c.model, ParamInit{mesh.world().device(), /*deferred=*/true, c.run.seed});
  const int u = c.parallel.sequence.ulysses_degree(mesh.sp());
  check_sequence_split(c.model, mesh.sp() / u, u, c.parallel.sequence);
  const auto layout = SequenceLayout::create(c.model.tokens(), mesh.sp() / u, u, c.parallel.sequence.balance);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  const auto flops = step_flops(c.model, c.data.global_batch, c.parallel.activation_checkpoint);
  const auto mem = estimate(c, *model, mesh);
  std::ostringstream out;
  out << "reel train --dry-run (nothing trained, no parameters allocated)\n"
      << "  " << mesh.describe() << "\n"
      << "  groups of rank " << mesh.world_rank() << ": dp {" << members(mesh.dp_members()) << "}, sp {"
      << members(mesh.sp_members()) << "}, ulysses " << mesh.ulysses() << ", ring " << mesh.ring() << ", shard group "
      << mesh.shard_group().size() << " rank(s), replicas " << mesh.replica_group().size() << "\n"
      << "  model " << c.model.preset << ": " << fixed(double(params) / 1e6, 2) << "M parameters, " << c.model.tokens()
      << " tokens per clip; sp rank 0 holds " << layout.count(0) << " of them ("
      << (mesh.sp() > 1 ? c.parallel.sequence.mode + ", " + c.parallel.sequence.balance : std::string("no split"))
      << ")\n"
      << "  step: " << c.data.global_batch << " clips (" << c.data.micro_batches << " micro-batch(es)), "
      << fixed(flops.model / 1e12, 3) << " TFLOP model, " << fixed(flops.hardware / 1e12, 3)
      << " TFLOP with recomputation\n"
      << "  memory per rank (estimated from shapes, not measured): shards + AdamW " << gib(mem.persistent)
      << ", gathered units " << gib(mem.gathered) << ", activations " << gib(mem.activations) << ", total "
      << gib(mem.persistent + mem.gathered + mem.activations) << "\n"
      << "  data: " << c.data.path << ", " << data.clips << " clips\n";
  return out.str();
}

}  // namespace reel
