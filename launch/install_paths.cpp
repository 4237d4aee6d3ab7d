#include "reel/launch/install_paths.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace reel {

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::string share_file(const std::string& exe_dir, const std::string& relative) {
  return (fs::path(exe_dir) / ".." / "share" / "reel" / relative).lexically_normal().string();
}

std::string reel_file(const char* env_override, const std::string& relative) {
  const char* v = std::getenv(env_override);
  if (v && *v) return v;
  return share_file(executable_dir(), relative);
}

std::string python_for_scripts(const std::string& built) {
  const char* v = std::getenv("REEL_PYTHON");
  if (v && *v) return v;
  std::error_code ec;
  if (!built.empty() && fs::is_regular_file(built, ec)) return built;
  return "python3";
}

std::string python_for_scripts() {
  // The build's interpreter: the venv scripts/setup.sh makes holds the packages the scripts
  // import (matplotlib, tensorboard), which a system python3 usually lacks. It is a path
  // outside any install prefix, so an installed reel on a machine without that venv (or
  // after it is removed) falls back to python3, and REEL_PYTHON names another.
  return python_for_scripts(REEL_BUILD_PYTHON);
}

}  // namespace reel
