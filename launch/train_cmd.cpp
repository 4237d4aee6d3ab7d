// `reel train`: trains the world model with FSDP across the ranks of the job.
// Per step: loss, lr, grad norm, tokens/s, MFU, step time split into compute / exposed
// communication / data wait, memory; rank 0 prints progress with an ETA and writes
// run.dir/metrics.jsonl; held-out evaluation every run.eval_every steps; the final
// weights go to run.dir/model.pt (what `reel sample` reads).
#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "dist/process_mesh.hpp"
#include "launch/command.hpp"
#include "launch/train_config.hpp"
#include "model/flow.hpp"
#include "model/loader.hpp"
#include "optim/clip.hpp"

#ifdef REEL_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace reel {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Resident set size of this process in bytes (Linux /proc): now ("VmRSS:") or its peak
// ("VmHWM:").
int64_t resident_bytes(const std::string& which = "VmRSS:") {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == which) {
      int64_t kb = 0;
      status >> kb;
      return kb * 1024;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

// Peak FLOP/s of one rank: bf16 dense H100/H200 on a GPU; on CPU, measured now with a
// 512^3 fp32 matmul at this rank's thread count (a practical ceiling for this model).
double default_peak(bool gpu) {
  if (gpu) return 989e12;
  auto a = at::randn({512, 512}), b = at::randn({512, 512});
  at::mm(a, b);
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) at::mm(a, b);
  return 8 * 2.0 * 512 * 512 * 512 / seconds_since(t);
}

struct Trainer {
  TrainConfig& c;
  ProcessMesh& mesh;
  WorldModel model;
  ParallelModel par;
  std::unique_ptr<FlatAdamW> opt;
  int64_t clips = 0;

  at::Tensor micro_loss(const ClipBatch& b, int64_t step) {
    const auto dev = mesh.world().device();
    auto x0 = patchify(frames_to_float(b.frames.to(dev)), c.model);
    auto flow = make_flow_batch(x0, b.sample_ids, step, c.seed, c.model);
    auto pred = par.fsdp->forward(flow.x_t, flow.t, b.actions.to(dev));
    return flow_loss_sum(pred, flow) / double(target_elements(c.model, c.global_batch));
  }

  // Held-out loss: the file's last eval_clips clips with fixed noise (step -1), this dp
  // rank's share, summed over ranks and divided by the global target count.
  double evaluate() {
    at::NoGradGuard no_grad;
    const int64_t share = c.eval_clips / mesh.dp();
    auto sum = at::zeros({1}, at::kDouble);
    if (share > 0) {
      VideoReader reader(c.data);
      std::vector<int64_t> ids;
      for (int64_t i = 0; i < share; ++i) ids.push_back(clips - c.eval_clips + mesh.dp_rank() * share + i);
      auto batch = reader.read(ids);
      const auto dev = mesh.world().device();
      auto x0 = patchify(frames_to_float(batch.frames.to(dev)), c.model);
      auto flow = make_flow_batch(x0, ids, -1, c.seed, c.model);
      sum += flow_loss_sum(par.fsdp->forward(flow.x_t, flow.t, batch.actions.to(dev)), flow).item<double>();
    }
    mesh.world().all_reduce(sum);
    return share > 0 ? sum.item<double>() / double(target_elements(c.model, share * mesh.dp())) : 0.0;
  }
};

void save_model(FsdpModel& fsdp, const std::string& path, bool write) {
  auto params = fsdp.full_parameters();  // collective
  if (!write) return;
  torch::serialize::OutputArchive archive;
  for (const auto& [name, value] : params) archive.write(name, value.cpu());
  archive.save_to(path);
}

}  // namespace

int run_train(int argc, char** argv) {
  TrainConfig c;
  if (!parse_train_config(argc, argv, c)) return 0;
  validate_train_config(c);  // bad values fail here, before MPI starts
  Runtime runtime(c.runtime);
  const int world = runtime.world()->size(), rank = runtime.info().world_rank;
  if (c.dp == 0) c.dp = world % c.sp == 0 ? world / c.sp : 0;
  auto mesh = ProcessMesh::create(runtime.world(), c.dp, c.sp);
  const int64_t micro_clips = c.global_batch / c.micro_batches;
  if (micro_clips % mesh.dp() != 0) {
    throw std::invalid_argument("data.global_batch " + std::to_string(c.global_batch) + " / micro_batches " +
                                std::to_string(c.micro_batches) + " = " + std::to_string(micro_clips) +
                                " clips do not divide over dp=" + std::to_string(mesh.dp()) + " data-parallel ranks");
  }
  LogConfig log_cfg = c.log;
  log_cfg.dir = c.dir + "/logs";
  const Logger log(log_cfg, rank);
  const VideoFileInfo info = VideoReader(c.data).info();
  check_data_geometry(c.model, info.frames, info.height, info.width, info.channels, info.action_dim, c.data);
  if (c.eval_clips + c.global_batch > info.clips) {
    throw std::invalid_argument(c.data + ": " + std::to_string(info.clips) + " clips cannot hold " +
                                std::to_string(c.eval_clips) + " held-out clips and a batch of " +
                                std::to_string(c.global_batch));
  }
  const bool on_gpu = mesh.world().device().is_cuda();
  c.parallel.fsdp.param_dtype = c.param_dtype == "auto" ? (on_gpu ? at::kBFloat16 : at::kFloat) : parse_dtype(c.param_dtype);
  c.parallel.fsdp.reduce_dtype = parse_dtype(c.reduce_dtype);
  Trainer t{c, mesh, WorldModel(c.model), {}, nullptr, info.clips};
  if (on_gpu) t.model->to(mesh.world().device());
  t.par = parallelize(*t.model, mesh, c.parallel, c.seed);
  t.opt = std::make_unique<FlatAdamW>(c.adamw);
  for (auto& u : t.par.fsdp->units()) t.opt->add(u->shard(), u->layout().decay_mask(t.par.shard_comm->rank()));
  ClipLoader loader(LoaderConfig{c.data, micro_clips, mesh.dp_rank(), mesh.dp(), 0, info.clips - c.eval_clips,
                                 c.data_seed, true, 2});
  const bool gpu = on_gpu;
  const double peak = c.peak_flops > 0 ? c.peak_flops : default_peak(gpu);
  const double step_flops = training_step_flops(c.model, c.global_batch) *
                            (c.parallel.checkpoint.mode == "none" ? 1.0 : 4.0 / 3.0);
  std::ofstream metrics;
  if (rank == 0) {
    std::filesystem::create_directories(c.dir);
    metrics.open(c.dir + "/metrics.jsonl", std::ios::trunc);
  }
  int64_t parameters = 0;
  for (const auto& p : t.model->parameters()) parameters += p.numel();
  log.info(cat("reel train: ", c.model.preset, " (", fixed(parameters / 1e6, 2), "M parameters), ",
               mesh.describe(), ", backend ", mesh.world().backend(), ", ", runtime.info().threads,
               " threads/rank, global batch ", c.global_batch, " x ", c.micro_batches, " micro, peak ",
               fixed(peak / 1e9, 1), " GFLOP/s/rank"));
  const auto run_start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < c.steps; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    t.par.fsdp->zero_grad_shards();
    double data_s = 0;
    auto loss = at::zeros({1}, at::kDouble);
    for (int64_t m = 0; m < c.micro_batches; ++m) {
      const auto wait = std::chrono::steady_clock::now();
      auto batch = loader.next();
      data_s += seconds_since(wait);
      t.par.fsdp->set_sync(m == c.micro_batches - 1);  // communicate once per step
      auto l = t.micro_loss(batch, step);
      l.backward();
      t.par.fsdp->finish_backward();
      loss += l.item<double>();
    }
    const double lr = c.schedule.lr_at(step);
    const double grad_norm = clip_grad_norm(t.par.fsdp->grad_shards(), c.clip, t.par.shard_comm.get());
    t.opt->step(t.par.fsdp->grad_shards(), lr);
    mesh.world().all_reduce(loss);  // the global loss (also the step's end on every rank)
    const double comm_s = t.par.fsdp->take_comm_seconds(), step_s = seconds_since(step_start);
    const double tokens_s = double(c.global_batch * c.model.tokens()) / step_s;
    const double mfu = step_flops / step_s / (peak * world);
    int64_t device_peak = 0;
#ifdef REEL_HAVE_CUDA
    if (gpu) device_peak = c10::cuda::CUDACachingAllocator::getDeviceStats(mesh.world().device().index()).allocated_bytes[0].peak;
#endif
    double eval = -1;
    if (c.eval_every > 0 && c.eval_clips > 0 && ((step + 1) % c.eval_every == 0 || step + 1 == c.steps)) eval = t.evaluate();
    if (rank == 0) {
      metrics << std::setprecision(8) << "{\"step\": " << step + 1 << ", \"loss\": " << loss.item<double>()
              << ", \"lr\": " << lr << ", \"grad_norm\": " << grad_norm << ", \"tokens_per_s\": " << tokens_s
              << ", \"mfu\": " << mfu << ", \"step_time_s\": " << step_s << ", \"compute_s\": "
              << std::max(0.0, step_s - comm_s - data_s) << ", \"comm_exposed_s\": " << comm_s
              << ", \"data_wait_s\": " << data_s << ", \"rss_bytes\": " << resident_bytes()
              << ", \"rss_peak_bytes\": " << resident_bytes("VmHWM:")
              << ", \"persistent_bytes\": " << 2 * t.par.fsdp->shard_bytes()
              << ", \"device_peak_bytes\": " << device_peak;
      if (eval >= 0) metrics << ", \"eval_loss\": " << eval;
      metrics << "}\n" << std::flush;
    }
    if ((step + 1) % c.log_every == 0 || step + 1 == c.steps || eval >= 0) {
      const double eta = seconds_since(run_start) / (step + 1) * (c.steps - step - 1);
      log.info(cat("step ", step + 1, "/", c.steps, "  loss ", fixed(loss.item<double>(), 4), "  lr ", lr,
                   "  grad_norm ", fixed(grad_norm, 3), "  ", fixed(tokens_s, 0), " tok/s  mfu ",
                   fixed(100 * mfu, 2), "%  step ", fixed(step_s * 1e3, 1), " ms (comm ", fixed(comm_s * 1e3, 1),
                   ", data ", fixed(data_s * 1e3, 1), ")  ", eval >= 0 ? "eval " + fixed(eval, 4) + "  " : "",
                   "eta ", fixed(eta, 0), " s"));
    }
  }
  save_model(*t.par.fsdp, c.dir + "/model.pt", rank == 0);
  log.info(cat("reel train: done in ", fixed(seconds_since(run_start), 1), " s; metrics in ", c.dir,
               "/metrics.jsonl, weights in ", c.dir, "/model.pt"));
  return 0;
}

}  // namespace reel
