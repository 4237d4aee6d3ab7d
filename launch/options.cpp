#include "reel/launch/options.hpp"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace po = boost::program_options;

namespace reel {

uint64_t parse_unsigned_option(const std::string& key, const std::string& text, uint64_t max) {
  size_t used = 0;
  unsigned long long value = 0;
  bool ok = !text.empty() && std::isdigit(static_cast<unsigned char>(text[0]));
  try {
    if (ok) value = std::stoull(text, &used, 10);
  } catch (const std::exception&) {
    ok = false;
  }
  if (!ok || used != text.size() || value > max) {
    throw UsageError("--" + key + " must be a whole number in [0, " + std::to_string(max) + "], got '" + text + "'");
  }
  return value;
}

std::string shortest_text(double value) {
  char buf[32];  // general: 0.0003 rather than 3e-04, 1e-08 where it is shorter
  const auto end = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general).ptr;
  return std::string(buf, end);
}

namespace {

// `positional`: the option one bare word is taken as (nullptr: none), `what` names it in
// messages ("configuration file", "run directory").
po::variables_map parse_command_line(int argc, char** argv, const po::options_description& desc,
                                     const char* positional_option, const std::string& what = "configuration file") {
  po::positional_options_description positional;  // no stray words, unless they are that option's
  if (positional_option) positional.add(positional_option, 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).run(), vm);
  } catch (const po::multiple_occurrences& e) {
    const std::string name = e.get_option_name();
    if (positional_option && name == std::string("--") + positional_option) {
      throw UsageError("only one " + what + " may be given (a second one, or a stray word after it)");
    }
    throw UsageError("option '" + name + "' is given more than once: give each option once");
  } catch (const po::too_many_positional_options_error&) {
    throw UsageError(std::string("unexpected word(s) on the command line") +
                     (positional_option ? " (only one " + what + " may be given)" : std::string()) +
                     "; options take the form --key value");
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return vm;
}

void read_config_file(const std::string& path, const po::options_description& desc, po::variables_map& vm) {
  if (std::filesystem::is_directory(path)) throw UsageError("configuration file " + path + " is a directory");
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read configuration file " + path + ": " + std::strerror(errno));
  try {
    po::store(po::parse_config_file(in, desc), vm);
  } catch (const po::error& e) {
    throw UsageError("configuration file " + path + ": " + e.what());
  }
}

}  // namespace

bool parse_run_dir_options(int argc, char** argv, const po::options_description& desc) {
  po::variables_map vm = parse_command_line(argc, argv, desc, "run-dir", "run directory");
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return false;
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

bool parse_options(int argc, char** argv, const po::options_description& desc, const char* config_option,
                   const po::options_description* help) {
  po::variables_map vm = parse_command_line(argc, argv, desc, config_option);
  if (vm.count("help")) {
    std::cout << (help ? *help : desc) << "\n";
    return false;
  }
  if (config_option && vm.count(config_option)) read_config_file(vm[config_option].as<std::string>(), desc, vm);
  try {
    po::notify(vm);  // required options and value checks after --help
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

}  // namespace reel
