// The model as chosen resolves to the preset's architecture unless an option overrides it,
// and the written configuration records what was resolved (train/config.hpp).
#include <gtest/gtest.h>

#include "reel/train/config.hpp"

namespace reel::test {
namespace {

TrainConfig resolved(const std::string& preset, MlpChoice mlp) {
  TrainConfig c;
  c.model_choice.preset = preset;
  c.model_choice.mlp = mlp;
  c.data.path = "unused.h5";
  c.resolve();
  return c;
}

TEST(Config, EachPresetKeepsItsOwnMlpUnlessOneIsGiven) {
  for (const char* preset : {"long", "1b", "7b"}) {
    const auto c = resolved(preset, MlpChoice::kPreset);
    EXPECT_EQ(c.model.mlp, MlpKind::kSwiglu) << preset;
    EXPECT_EQ(c.model_choice.mlp, MlpChoice::kSwiglu) << preset;  // what config.ini records
    EXPECT_EQ(resolved(preset, MlpChoice::kGelu).model.mlp, MlpKind::kGelu) << preset;
  }
  for (const char* preset : {"tiny", "small", "long_cpu"}) {
    EXPECT_EQ(resolved(preset, MlpChoice::kPreset).model.mlp, MlpKind::kGelu) << preset;
    EXPECT_EQ(resolved(preset, MlpChoice::kSwiglu).model.mlp, MlpKind::kSwiglu) << preset;
  }
}

// The option's own default: a configuration that names no MLP gets the preset's.
TEST(Config, TheDefaultMlpIsThePresets) {
  TrainConfig c;
  c.model_choice.preset = "1b";
  c.data.path = "unused.h5";
  c.resolve();
  EXPECT_EQ(c.model.mlp, MlpKind::kSwiglu);
}

TEST(Config, TheWrittenConfigurationNamesTheResolvedMlp) {
  const std::string ini = config_ini(resolved("1b", MlpChoice::kPreset));
  EXPECT_NE(ini.find("\nmlp = swiglu\n"), std::string::npos) << ini;
  EXPECT_NE(config_ini(resolved("tiny", MlpChoice::kPreset)).find("\nmlp = gelu\n"), std::string::npos);
}

}  // namespace
}  // namespace reel::test
