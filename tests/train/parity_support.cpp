#include "tests/train/parity_support.hpp"

#include "data/loader.hpp"
#include "data/video_file.hpp"
#include "model/flow.hpp"
#include "optim/adamw.hpp"
#include "optim/clip.hpp"
#include "optim/weight_decay.hpp"

namespace reel::test {

ReferenceRun train_reference(const TrainConfig& c) {
  ReferenceRun run;
  run.model = WorldModel(c.model, ParamInit{at::kCPU, false, c.run.seed});
  FlatAdamW opt(c.adamw);
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& p : run.model->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    auto flat = p.value().data().view({-1});
    opt.add(flat, at::full({flat.numel()}, decays(p.key(), p.value().sizes()) ? 1.0f : 0.0f));
  }
  const int64_t clips = VideoReader(c.data.path).info().clips;
  ClipLoader loader(LoaderConfig{c.data.path, c.data.micro_clips(), 0, 1, 0, clips - c.data.eval_clips, c.data.seed,
                                 true, 0, c.data.global_batch});
  for (int64_t step = 0; step < c.run.steps; ++step) {
    for (auto& p : params) p.second.mutable_grad() = at::Tensor();
    ReferenceStep s;
    for (int64_t m = 0; m < c.data.micro_batches; ++m) {
      auto batch = loader.next();
      auto x0 = patchify(frames_to_float(batch.frames), c.model);
      auto flow = make_flow_batch(x0, batch.sample_ids, step, c.run.seed, c.model);
      auto loss = flow_loss_sum(run.model->forward(flow.x_t, flow.t, batch.actions), flow) /
                  double(target_elements(c.model, c.data.global_batch));
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

}  // namespace reel::test
