// Where reel finds the files it runs (launch/install_paths.hpp): beside the executable in
// a build tree and in an installed tree, the environment first, the build's Python or python3.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "reel/launch/install_paths.hpp"

namespace fs = std::filesystem;

namespace reel {
namespace {

// Sets (or unsets, value nullptr) an environment variable for one test.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(InstallPaths, ShareFileIsBesideTheExecutablesFolder) {
  EXPECT_EQ(share_file("/opt/reel/bin", "scripts/plot_run.py"), "/opt/reel/share/reel/scripts/plot_run.py");
  EXPECT_EQ(share_file("/work/reel/build/launch", "scripts/plot_run.py"),
            "/work/reel/build/share/reel/scripts/plot_run.py");
  EXPECT_EQ(share_file("/opt/reel/bin/", "slurm/train.sbatch"), "/opt/reel/share/reel/slurm/train.sbatch");
  EXPECT_EQ(share_file("/opt/x/../reel/./bin", "scripts/a.py"), "/opt/reel/share/reel/scripts/a.py");
}

TEST(InstallPaths, ExecutableDirIsThisProcesssFolder) {
  const std::string dir = executable_dir();
  ASSERT_FALSE(dir.empty());
  EXPECT_TRUE(fs::path(dir).is_absolute()) << dir;
  EXPECT_TRUE(fs::equivalent(fs::path(dir) / "reel_install_paths_tests", fs::read_symlink("/proc/self/exe")));
}

TEST(InstallPaths, TheEnvironmentOverridesAFile) {
  EnvVar unset("REEL_TEST_SCRIPT", nullptr);
  EXPECT_EQ(reel_file("REEL_TEST_SCRIPT", "scripts/x.py"), share_file(executable_dir(), "scripts/x.py"));
  EnvVar empty("REEL_TEST_SCRIPT", "");
  EXPECT_EQ(reel_file("REEL_TEST_SCRIPT", "scripts/x.py"), share_file(executable_dir(), "scripts/x.py"));
  EnvVar set("REEL_TEST_SCRIPT", "/elsewhere/x.py");
  EXPECT_EQ(reel_file("REEL_TEST_SCRIPT", "scripts/x.py"), "/elsewhere/x.py");
}

TEST(InstallPaths, PythonIsTheEnvironmentsThenTheBuildsIfItExistsThenPython3) {
  const fs::path dir = fs::temp_directory_path() / ("reel_install_paths_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string built = (dir / "python").string();
  std::ofstream(built) << "#!/bin/sh\n";
  {
    EnvVar unset("REEL_PYTHON", nullptr);
    EXPECT_EQ(python_for_scripts(built), built);
    EXPECT_EQ(python_for_scripts((dir / "gone").string()), "python3");
    EXPECT_EQ(python_for_scripts(dir.string()), "python3") << "a folder is not an interpreter";
    EXPECT_EQ(python_for_scripts(""), "python3");
    EnvVar empty("REEL_PYTHON", "");
    EXPECT_EQ(python_for_scripts(built), built);
    EnvVar set("REEL_PYTHON", "/usr/bin/python3.11");
    EXPECT_EQ(python_for_scripts(built), "/usr/bin/python3.11");
  }
  fs::remove_all(dir);
}

// The build tree has the installed tree's shape: build/launch/reel finds
// build/share/reel/scripts (launch/CMakeLists.txt links the scripts there). This binary
// runs from build/tests, one folder below the build tree like build/launch.
TEST(InstallPaths, TheBuildTreeHoldsTheScriptsWhereReelLooks) {
  EnvVar unset("REEL_PLOT_SCRIPT", nullptr);
  for (const char* script : {"scripts/plot_run.py", "scripts/metrics_to_tensorboard.py"}) {
    const std::string path = reel_file("REEL_PLOT_SCRIPT", script);
    EXPECT_TRUE(fs::is_regular_file(path)) << path;
  }
}

}  // namespace
}  // namespace reel
