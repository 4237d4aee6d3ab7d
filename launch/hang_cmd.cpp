// `reel hang RUN_DIR [--json]`: reads the hang dumps every live rank wrote into the run
// directory (RUN_DIR/hang_rank<R>.txt, dist/watchdog.hpp) and says, in a few lines, the
// collective the job is stuck in, the ranks that entered it, the ranks that never did and
// what each of those was doing, and the chain of waits to the likely cause
// (dist/hang_report.hpp). Exit 0 when it could explain; 1 when there is no dump to read.
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reel/dist/hang_report.hpp"
#include "reel/launch/options.hpp"

namespace po = boost::program_options;

namespace reel {

int run_hang(int argc, char** argv) {
  std::string dir;
  bool json = false;
  po::options_description desc(
      "reel hang RUN_DIR [--json]: explain a hang from the dumps the ranks wrote (RUN_DIR/hang_rank<R>.txt)");
  desc.add_options()("help,h", "show this help")("run-dir", po::value(&dir)->required(), "run directory")(
      "json", po::bool_switch(&json), "print one JSON object, for tools");
  if (!parse_run_dir_options(argc, argv, desc)) return 0;
  const std::vector<hang::Dump> dumps = hang::read_dumps(dir);
  if (dumps.empty()) {
    std::error_code ec;
    const bool exists = std::filesystem::is_directory(dir, ec);
    std::cerr << "reel hang: no hang dump (hang_rank<R>.txt) in " << dir << (exists ? "" : " (not a directory)")
              << ": the watchdog writes one per live rank into the run directory (run.dir) when a collective "
                 "waits longer than --dist.timeout; look in the job's stderr for 'hang detected' if run.dir "
                 "was elsewhere\n";
    return 1;
  }
  const hang::Report report = hang::analyse(dumps);
  if (json) {
    std::cout << hang::to_json(report);
  } else {
    std::cout << "reel hang " << dir << ": " << hang::to_text(report);
  }
  return 0;
}

}  // namespace reel
