// Shared by the MPI test files: the process-wide communicator the test main creates.
#pragma once

#include "parallel/communicator.h"

namespace pajama::testing {

// The CPU communicator of this process (MPI for 2+ ranks, identity for one).
Communicator& comm();
const World& world();

}  // namespace pajama::testing
