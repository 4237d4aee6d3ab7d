// Command-line parsing shared by the subcommands (Boost.Program_options).
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "reel/dist/enum_names.hpp"

namespace reel {

// A command line or configuration file that cannot be taken as written: main() prints it
// with a pointer to --help and exits 2 (the usage-error code), before any rank starts.
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Parses `text` as an unsigned whole number for option `key`; a sign, a fraction, trailing
// words or a value past T's range is a UsageError (Boost would wrap -1 around to 2^64 - 1).
uint64_t parse_unsigned_option(const std::string& key, const std::string& text, uint64_t max);

// The shortest text that reads back as the same double: "0.0003", not 0.00029999999999999997.
std::string shortest_text(double value);

// Parses `text` as the value of mode option `key` by its enum's names; an unknown name is
// a UsageError naming the option and the choices.
template <typename E>
E parse_enum_option(const std::string& key, const std::string& text) {
  try {
    return parse_enum<E>(key, text);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

// Adds options to a description from a visitor over (key, field, help) — e.g.
// visit_runtime_options — with each field's current value as its default. Booleans may
// be given alone (--dist.verify) or with a value (--dist.verify false). A mode (an enum
// with a names table) is read by name, and --help lists its choices before its help.
class OptionAdder {
 public:
  explicit OptionAdder(boost::program_options::options_description& desc) : desc_(desc) {}
  template <typename T>
  void operator()(const std::string& key, T& field, const char* help) const {
    if constexpr (std::is_enum_v<T>) {
      const std::string choices = enum_choices<T>(" | ");
      desc_.add_options()(
          key.c_str(),
          boost::program_options::value<std::string>()
              ->default_value(enum_name(field))
              ->notifier([key, &field](const std::string& text) { field = parse_enum_option<T>(key, text); }),
          (*help ? choices + " (" + help + ")" : choices).c_str());
    } else if constexpr (std::is_unsigned_v<T>) {  // read as text: Boost would wrap -1 around
      desc_.add_options()(key.c_str(),
                          boost::program_options::value<std::string>()
                              ->default_value(std::to_string(field))
                              ->notifier([key, &field](const std::string& text) {
                                field = static_cast<T>(parse_unsigned_option(key, text, T(-1)));
                              }),
                          help);
    } else {
      desc_.add_options()(key.c_str(), boost::program_options::value<T>(&field)->default_value(field), help);
    }
  }
  void operator()(const std::string& key, double& field, const char* help) const {  // --help shows 0.0003
    desc_.add_options()(
        key.c_str(), boost::program_options::value<double>(&field)->default_value(field, shortest_text(field)), help);
  }
  void operator()(const std::string& key, bool& field, const char* help) const {
    desc_.add_options()(key.c_str(),
                        boost::program_options::value<bool>(&field)
                            ->default_value(field, field ? "true" : "false")
                            ->implicit_value(true, "true"),
                        help);
  }

 private:
  boost::program_options::options_description& desc_;
};

// Parses argv into desc's variables. Returns false after printing desc when --help was
// given (the command then exits 0); throws UsageError on unknown, repeated, missing or
// malformed options and on stray words. With `config_option` (e.g. "config"), one positional word is taken as that
// option's value, and the INI file it names is read after the command line (whose values
// win); its sections are the part of each key before the dot. `help`, when given, is what
// --help prints instead of desc (a command that accepts keys it does not use lists only
// the ones it does).
// The same for commands on one run directory (reel plot, hang, tensorboard): desc has a
// "run-dir" option, which one bare word anywhere on the line gives.
bool parse_run_dir_options(int argc, char** argv, const boost::program_options::options_description& desc);

bool parse_options(int argc, char** argv, const boost::program_options::options_description& desc,
                   const char* config_option = nullptr,
                   const boost::program_options::options_description* help = nullptr);

}  // namespace reel
