#include "launch/command.hpp"

namespace reel {

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"smoke", "run every collective across a dp x sp mesh and check the results", run_smoke},
  };
  return list;
}

}  // namespace reel
