// Learning, for real: the tiny preset trained on the generated physics world beats the
// copy-last-frame baseline on held-out clips — the rolled-out next frame-group is closer
// to the truth than repeating the last context frame. A test of behaviour, not of time.
#include <gtest/gtest.h>

#include <filesystem>

#include "reel/data/physics_world.hpp"
#include "reel/data/samples.hpp"
#include "reel/data/video_file.hpp"
#include "reel/data/weights.hpp"
#include "reel/model/world_model.hpp"

#include <fstream>
#include "tests/model/tiny_training.hpp"

namespace reel::test {
namespace {

TEST(Learning, TinyPresetBeatsCopyLastFrameOnHeldOutClips) {
  const auto path = std::filesystem::temp_directory_path() / ("reel_learning_" + std::to_string(::getpid()) + ".h5");
  PhysicsWorldSpec world;
  world.clips = 1088;  // 1024 for training, 64 held out
  world.seed = 7;
  write_physics_world(path, world);

  torch::manual_seed(0);
  ModelConfig cfg = model_preset("tiny");
  WorldModel model(cfg);
  init_model(*model, 1234);
  LoaderConfig lc;
  lc.path = path;
  lc.global_batch = 16;
  lc.count = 1024;
  lc.seed = 3;
  SampleLoader train(lc);
  // 900 steps of 16 clips at lr 2e-3 (about 2 minutes on 2 cores).
  const auto run = train_tiny(model, train, 900, 2e-3, 99);

  // Held-out clips: context = the first k frame-groups; predict group k.
  VideoReader reader(path);
  std::vector<int64_t> held;
  for (int64_t i = 1024; i < 1088; ++i) held.push_back(i);
  auto clips = reader.read(held);
  auto video = frames_to_float(clips.frames);  // [B, T, C, H, W]
  const int64_t k = cfg.context_groups, lg = cfg.tokens_per_group(), pt = cfg.patch_t;
  auto tokens = patchify(video, cfg);
  model->eval();
  auto truth = video.narrow(1, k * pt, pt);
  auto last = video.select(1, k * pt - 1).unsqueeze(1).expand_as(truth);
  const double copy_mse = (last - truth).pow(2).mean().item<double>();
  double model_mse = 0;
  for (int64_t s : {1, 10}) {
    RolloutSpec spec;
    spec.from_group = k, spec.groups = 1, spec.steps = s, spec.seed = 5;
    auto rolled = rollout(*model, tokens, clips.actions, held, spec);
    auto predicted = unpatchify(rolled.narrow(1, k * lg, lg), cfg).clamp(-1, 1);  // [B, pt, C, H, W]
    const double mse = (predicted - truth).pow(2).mean().item<double>();
    std::cout << "[learning] S=" << s << " MSE " << mse << "\n";
    if (s == 10) model_mse = mse;
  }
  std::cout << "[learning] " << run.steps << " steps in " << run.seconds << " s; loss " << run.first_loss << " -> "
            << run.last_loss << "; held-out next-group MSE: model " << model_mse << ", copy-last-frame " << copy_mse
            << " (ratio " << model_mse / copy_mse << ")\n";
  EXPECT_LT(run.last_loss, run.first_loss);
  EXPECT_LT(model_mse, copy_mse);

  // The pictures `reel sample` writes, from weights saved and loaded again.
  const auto dir = std::filesystem::temp_directory_path() / ("reel_samples_" + std::to_string(::getpid()));
  save_weights(*model, (dir.string() + ".h5"));
  WorldModel loaded(cfg);
  load_weights(*loaded, dir.string() + ".h5");
  loaded->eval();
  SampleOptions options;
  options.pictures = 2;
  const auto report = write_samples(*loaded, path, 1086, 2, dir.string(), options);
  ASSERT_EQ(report.files.size(), 2u);
  for (const auto& f : report.files) {
    std::ifstream png(f, std::ios::binary);
    char magic[8] = {0};
    png.read(magic, 8);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << f;
  }
  std::cout << "[learning] samples in " << dir << ": " << report.metrics.summary() << "\n";
  if (!std::getenv("REEL_KEEP_SAMPLES")) std::filesystem::remove_all(dir);
  std::filesystem::remove(dir.string() + ".h5");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace reel::test
