// What every reel test binary shares: the Runtime its main() started.
#pragma once

#include "reel/dist/runtime.hpp"

namespace reel::test {

// The runtime of this test process (MPI started, world communicator on the MPI backend).
Runtime& runtime();
inline Communicator& world() { return *runtime().world(); }

}  // namespace reel::test
