// Where the running reel is, and the files it runs from there.
//
// reel finds its helper scripts beside itself, never at a path compiled in: the build tree
// and an installed tree have the same shape around the executable,
//   build/launch/reel   ->  build/share/reel/scripts/...   (links made by the build)
//   PREFIX/bin/reel     ->  PREFIX/share/reel/scripts/...  (cmake --install)
// so a build tree, an installed reel and a copy of an installed tree moved elsewhere all
// find their own scripts. The environment overrides each file (REEL_PLOT_SCRIPT, ...).
#pragma once

#include <string>

namespace reel {

// The folder holding the running executable (/proc/self/exe, links resolved); "" when it
// cannot be read.
std::string executable_dir();

// exe_dir/../share/reel/relative, lexically normal (no "..").
std::string share_file(const std::string& exe_dir, const std::string& relative);

// The value of env_override when set and not empty, else share_file(executable_dir(), relative).
std::string reel_file(const char* env_override, const std::string& relative);

// The Python that runs reel's scripts: $REEL_PYTHON when set and not empty, else built
// when that file exists, else python3 (found on PATH when it runs).
std::string python_for_scripts(const std::string& built);
// The same with the build's interpreter (launch/CMakeLists.txt: REEL_BUILD_PYTHON).
std::string python_for_scripts();

}  // namespace reel
