// `reel train`: trains the world model with FSDP across the ranks of the job. A thin
// command over the Trainer (train/trainer.hpp): options in, exit code out.
#include <boost/program_options.hpp>

#include "launch/command.hpp"
#include "launch/options.hpp"
#include "train/trainer.hpp"

namespace po = boost::program_options;

namespace reel {

int run_train(int argc, char** argv) {
  TrainConfig c;  // the defaults, each from the struct that owns it
  std::string config_file;
  po::options_description desc(
      "reel train [CONFIG.ini] [--key value ...]\n"
      "An INI file's sections are the part of each key before the dot; the command line wins over the file");
  desc.add_options()("help,h", "show this help")("config", po::value(&config_file), "INI configuration file");
  visit_train_options(c, OptionAdder(desc));
  if (!parse_options(argc, argv, desc, "config")) return 0;
  c.resolve();  // bad values fail here, before MPI starts
  Runtime runtime(c.runtime);
  Trainer trainer(c, runtime.world());
  trainer.fit();
  return 0;
}

}  // namespace reel
