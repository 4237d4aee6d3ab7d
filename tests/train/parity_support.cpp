#include "tests/train/parity_support.hpp"

#include <gtest/gtest.h>

#include "reel/data/loader.hpp"
#include "reel/data/video_file.hpp"
#include "reel/model/flow.hpp"
#include "reel/model/world_model.hpp"
#include "reel/optim/adamw.hpp"
#include "reel/optim/clip.hpp"
#include "reel/optim/weight_decay.hpp"
#include "reel/train/trainer.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {

TrainConfig parity_base(const std::string& data, const std::string& run_dir, int micro) {
  TrainConfig c;
  c.model_choice.dim = 64;
  c.model_choice.depth = 2;
  c.data.path = data;
  c.data.global_batch = 12 * micro;
  c.data.micro_batches = micro;
  c.data.eval_clips = 4;
  c.data.seed = 5;
  c.run.dir = run_dir;
  c.run.seed = 17;
  c.clip = 0.5;
  c.log.level = LogLevel::kWarn;
  return c;
}

ReferenceLoss world_reference_loss() {
  auto sum = [](Model& model, const ModelConfig& cfg, const Batch& batch, int64_t step, uint64_t seed) {
    auto x0 = patchify(frames_to_float(batch.at("frames")), cfg);
    auto flow = make_flow_batch(x0, batch.sample_ids, step, seed, cfg);
    return flow_loss_sum(dynamic_cast<WorldModelImpl&>(model).forward(flow.x_t, flow.t, batch.at("actions")), flow);
  };
  // The target groups' tokens, every element of each.
  auto targets = [](const ModelConfig& cfg) {
    return (cfg.groups() - cfg.context_groups) * cfg.tokens_per_group() * cfg.patch_dim();
  };
  return {sum, targets};
}

ReferenceRun train_reference(const TrainConfig& c, const ReferenceLoss& loss_sum) {
  ReferenceRun run;
  const ModelSpec& spec = model_spec(c.model.family);
  run.model = spec.build(c.model, ParamInit{at::kCPU, false, c.run.seed});
  FlatAdamW opt(c.adamw);
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& p : run.model->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    auto flat = p.value().data().view({-1});
    opt.add(flat, at::full({flat.numel()}, decays(p.key(), p.value().sizes()) ? 1.0f : 0.0f));
  }
  const int64_t samples = spec.open_data(c.data.path)->sample_count();
  LoaderConfig lc{c.data.path,
                  c.data.micro_clips(),
                  0,
                  1,
                  0,
                  samples - c.data.eval_clips,
                  c.data.seed,
                  true,
                  0,
                  c.data.global_batch,
                  [&spec](const std::string& path) { return spec.open_data(path); }};
  SampleLoader loader(lc);
  const double targets = double(loss_sum.targets_per_sample(c.model) * c.data.global_batch);
  for (int64_t step = 0; step < c.run.steps; ++step) {
    for (auto& p : params) p.second.mutable_grad() = at::Tensor();
    ReferenceStep s;
    for (int64_t m = 0; m < c.data.micro_batches; ++m) {
      auto batch = loader.next();
      auto loss = loss_sum.sum(*run.model, c.model, batch, step, c.run.seed) / targets;
      loss.backward();
      s.loss += loss.item<double>();
    }
    std::vector<at::Tensor> grads;
    for (auto& p : params) {
      s.grads[p.first] = p.second.grad().clone();
      grads.push_back(p.second.grad().view({-1}));
    }
    s.grad_norm = clip_grad_norm(grads, c.clip, nullptr);
    opt.step(grads, c.schedule.lr_at(step));
    run.steps.push_back(std::move(s));
  }
  return run;
}

at::Tensor reference_slice(const UnitLayout& layout, const std::map<std::string, at::Tensor>& grads, int rank) {
  std::vector<at::Tensor> parts;
  for (const auto& slot : layout.params) parts.push_back(grads.at(slot.name).reshape({-1}));
  auto flat = at::cat(parts);
  flat = at::constant_pad_nd(flat, {0, layout.padded - layout.numel});
  return flat.narrow(0, layout.begin(rank), layout.shard);
}

void expect_parity(TrainConfig c, const ReferenceLoss& loss, double tol) {
  c.resolve();
  const auto reference = train_reference(c, loss);
  Trainer trainer(c, runtime().world());
  const int shard_rank = trainer.mesh().shard_group().rank();
  auto close = [tol](double got, double want, const std::string& what) {
    EXPECT_NEAR(got, want, tol * std::abs(want)) << what;
  };
  for (int64_t step = 0; step < c.run.steps; ++step) {
    const auto& ref = reference.steps[step];
    const std::string at = "step " + std::to_string(step);
    close(trainer.forward_backward(step), ref.loss, at + " loss");
    for (auto& unit : trainer.fsdp().units()) {
      const auto want = reference_slice(unit->layout(), ref.grads, shard_rank);
      const double scale = want.abs().max().item<double>();
      const double diff = (unit->grad_shard() - want).abs().max().item<double>();
      EXPECT_LE(diff, tol * scale + 1e-12)
          << at << " unit " << unit->layout().name << ": gradient differs by " << diff << " (largest " << scale << ")";
    }
    close(trainer.optimizer_step(step), ref.grad_norm, at + " gradient norm");
  }
  EXPECT_LT(reference.steps.back().loss, reference.steps.front().loss) << "training must move";
  const auto params = trainer.fsdp().full_parameters();
  for (const auto& p : reference.model->named_parameters()) {
    const auto& got = params.at(p.key());
    EXPECT_TRUE(at::allclose(got, p.value(), tol, tol))
        << p.key() << " max diff " << (got - p.value()).abs().max().item<float>();
  }
}

}  // namespace reel::test
