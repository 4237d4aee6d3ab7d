#include "reel/launch/plot.hpp"

#include <sys/wait.h>
#include <boost/program_options.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reel/launch/install_paths.hpp"
#include "reel/launch/options.hpp"

namespace po = boost::program_options;

namespace reel {
namespace {

std::string quoted(const std::string& s) {  // one shell word
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

}  // namespace

int plot_run(const std::string& run_dir, const std::string& out, std::string* output) {
  const std::string python = python_for_scripts();
  const std::string script = reel_file("REEL_PLOT_SCRIPT", "scripts/plot_run.py");
  std::string cmd = quoted(python) + " " + quoted(script) + " " + quoted(run_dir);
  if (!out.empty()) cmd += " --out " + quoted(out);
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start " + python + " for " + script);
  std::array<char, 512> buf{};
  output->clear();
  while (std::fgets(buf.data(), buf.size(), pipe)) *output += buf.data();
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int run_plot(int argc, char** argv) {
  std::string dir, out;
  po::options_description desc("reel plot RUN_DIR [--out FILE.png]: the run's curves as a PNG");
  desc.add_options()("help,h", "show this help")("run-dir", po::value(&dir)->required(), "run directory")(
      "out", po::value(&out), "PNG file (default RUN_DIR/curves.png)");
  if (!parse_run_dir_options(argc, argv, desc)) return 0;
  std::string output;
  const int rc = plot_run(dir, out, &output);
  std::cout << output;
  if (rc != 0) throw std::runtime_error("plotting " + dir + " failed (exit " + std::to_string(rc) + ", above)");
  return 0;
}

}  // namespace reel
