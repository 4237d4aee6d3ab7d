// A run's curves as a PNG, drawn by scripts/plot_run.py with the project's Python
// (matplotlib from the venv scripts/setup.sh makes). The script is the one beside the
// executable (share/reel/scripts, launch/install_paths.hpp), the interpreter the build's
// venv Python, else python3; the environment's REEL_PYTHON and REEL_PLOT_SCRIPT override them.
#pragma once

#include <string>

namespace reel {

// Draws run_dir/metrics.jsonl into out (empty: run_dir/curves.png). Returns the script's
// exit status (0: written) and its output in *output.
int plot_run(const std::string& run_dir, const std::string& out, std::string* output);

// `reel plot RUN_DIR [--out FILE]`.
int run_plot(int argc, char** argv);

}  // namespace reel
