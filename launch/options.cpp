#include "launch/options.hpp"

#include <fstream>
#include <iostream>
#include <stdexcept>

namespace po = boost::program_options;

namespace reel {

bool parse_options(int argc, char** argv, const po::options_description& desc, const char* config_option) {
  po::positional_options_description positional;  // no stray words, unless they name the config
  if (config_option) positional.add(config_option, 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).run(), vm);
  } catch (const po::multiple_occurrences& e) {
    if (!config_option) throw;
    throw std::invalid_argument(std::string(e.what()) + ": only one configuration file may be given");
  } catch (const po::too_many_positional_options_error&) {
    throw std::invalid_argument(std::string("unexpected word(s) on the command line") +
                                (config_option ? " (only one configuration file may be given)" : "") +
                                "; options take the form --key value");
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  if (config_option && vm.count(config_option)) {
    const auto path = vm[config_option].as<std::string>();
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot read configuration file " + path);
    try {
      po::store(po::parse_config_file(in, desc), vm);
    } catch (const po::error& e) {
      throw std::invalid_argument("configuration file " + path + ": " + e.what());
    }
  }
  po::notify(vm);  // required options and value checks after --help
  return true;
}

}  // namespace reel
