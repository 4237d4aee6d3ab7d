// Command-line parsing shared by the subcommands (Boost.Program_options).
#pragma once

#include <boost/program_options.hpp>

namespace reel {

// Parses argv into desc's variables. Returns false after printing desc when --help was
// given (the command then exits 0); throws on unknown or missing options.
bool parse_options(int argc, char** argv, const boost::program_options::options_description& desc);

}  // namespace reel
