#include "launch/options.hpp"

#include <iostream>

namespace po = boost::program_options;

namespace reel {

bool parse_options(int argc, char** argv, const po::options_description& desc) {
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  po::notify(vm);  // required options and value checks after --help
  return true;
}

}  // namespace reel
