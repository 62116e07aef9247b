// Who am I in the job: rank, world size, local rank and local size, discovered from
// OpenMPI's environment (mpirun), SLURM (srun), or a single process with neither.
// The GPU a rank uses is its local rank.
#pragma once

#include <string>

namespace pajama {

struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  std::string launcher = "single";  // "openmpi", "slurm", "single"
  bool is_main() const { return rank == 0; }
};

// Reads OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE} (mpirun), else, in a task of an
// srun step, SLURM_{PROCID,NTASKS,LOCALID,...}, else PMI_{RANK,SIZE}, else a world of one.
// Throws ConfigError on inconsistent values and where a world of one would be a mistake:
// torchrun / torch.distributed.launch variables (RANK, WORLD_SIZE > 1) without an MPI or
// srun launcher (pajama has no c10d rendezvous), and a SLURM batch script or salloc shell
// (SLURM_JOB_ID without an srun step) whose job has more than one task or node.
World discover_world();

}  // namespace pajama
