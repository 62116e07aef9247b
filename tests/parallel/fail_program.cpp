// Started by test_failure under `mpiexec -n 2`. Rank 1 misbehaves before an all_reduce
// that rank 0 is waiting in:
//   throw  rank 1 throws; main catches, logs and aborts the communicator;
//   hang   rank 1 sleeps; rank 0's all_reduce times out (3 s) and rank 0 aborts;
//   ok     nobody fails (the control case: exit 0).
// Either way mpirun must end every rank and exit non-zero.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "core/log.h"
#include "parallel/communicator.h"

int main(int argc, char** argv) {
  using namespace pajama;
  const char* mode = argc > 1 ? argv[1] : "ok";
  const World world = discover_world();
  set_log_rank(world.rank, world.size);
  std::unique_ptr<Communicator> comm;
  try {
    CommConfig cc;
    cc.timeout_s = 3;
    comm = make_communicator(world, torch::kCPU, cc);
    if (world.size != 2) throw std::runtime_error("this program needs exactly 2 ranks");
    comm->barrier();
    if (world.rank == 1 && std::strcmp(mode, "throw") == 0) throw std::runtime_error("injected failure on rank 1");
    if (world.rank == 1 && std::strcmp(mode, "hang") == 0) std::this_thread::sleep_for(std::chrono::seconds(120));
    torch::Tensor t = torch::ones({1234});
    comm->all_reduce(t, ReduceOp::kSum);
    comm->barrier();
    if (world.rank == 0) std::printf("all ranks finished\n");
    return 0;
  } catch (const std::exception& e) {
    log_error(e.what());
    if (comm) comm->abort(1);
    return 1;
  }
}
