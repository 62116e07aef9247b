// main() for the MPI test executable: checks the world is the size the test was
// registered for (--expect-ranks=N), creates one communicator, runs every test on every
// rank, and exits non-zero on all ranks if any rank failed.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.h"
#include "parallel/communicator.h"
#include "test_env.h"

namespace pajama::testing {
namespace {
World g_world;
std::unique_ptr<Communicator> g_comm;
}  // namespace

Communicator& comm() { return *g_comm; }
const World& world() { return g_world; }

}  // namespace pajama::testing

int main(int argc, char** argv) {
  using namespace pajama;
  ::testing::InitGoogleTest(&argc, argv);
  int expect = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--expect-ranks=", 15) == 0) expect = std::atoi(argv[i] + 15);
  }
  if (expect < 1) {
    std::fprintf(stderr, "usage: %s --expect-ranks=N (run under mpiexec -n N when N > 1)\n", argv[0]);
    return 2;
  }
  pajama::testing::g_world = discover_world();
  if (pajama::testing::g_world.size != expect) {
    // Failing, not skipping: a multi-rank test that silently runs on one rank hides bugs.
    std::fprintf(stderr, "error: started for %d rank(s) but this process sees a world of %d (launcher %s); "
                 "run it under mpiexec -n %d\n", expect, pajama::testing::g_world.size,
                 pajama::testing::g_world.launcher.c_str(), expect);
    return 3;
  }
  set_log_rank(pajama::testing::g_world.rank, pajama::testing::g_world.size);
  CommConfig cc;
  cc.timeout_s = 120;
  pajama::testing::g_comm = make_communicator(pajama::testing::g_world, torch::kCPU, cc);
  if (expect > 1 && pajama::testing::g_comm->backend() != "mpi") {
    std::fprintf(stderr, "error: expected the MPI backend, got %s\n", pajama::testing::g_comm->backend().c_str());
    return 3;
  }
  torch::set_num_threads(1);
  int rc = RUN_ALL_TESTS();
  const bool failed = any_rank(*pajama::testing::g_comm, rc != 0);
  if (failed && rc == 0) std::fprintf(stderr, "[rank %d] another rank failed a test\n", pajama::testing::g_world.rank);
  pajama::testing::g_comm.reset();
  return failed ? 1 : 0;
}
