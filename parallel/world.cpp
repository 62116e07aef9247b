#include "parallel/world.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace pajama {
namespace {

bool env_int(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  PAJAMA_CHECK_AS(ConfigError, end != v && *end == '\0' && x >= 0 && x < (1L << 30),
                  "environment variable ", name, "='", v, "' is not a non-negative integer");
  out = static_cast<int>(x);
  return true;
}

// A variable another tool owns: an integer, or nothing (never an error of ours).
bool env_int_lenient(const char* name, long long& out) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0') return false;
  out = x;
  return true;
}

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// Whether this process is a task of an srun job step. srun's tasks get SLURM_STEP_ID
// (and the older SLURM_STEPID); the batch script, salloc's interactive step and the
// extern step inherit SLURM_PROCID=0 and the job's SLURM_NTASKS but get no step id,
// since Slurm's ids for them (0xfffffffa..0xffffffff) do not fit the signed int it
// exports. A value in that range, or any non-number, counts as no step as well.
bool in_srun_step() {
  long long step = -1;
  if (!env_int_lenient("SLURM_STEP_ID", step) && !env_int_lenient("SLURM_STEPID", step)) return false;
  return step >= 0 && step < 0xfffffff0LL;  // SLURM_MAX_NORMAL_STEP_ID
}

// torchrun and torch.distributed.launch start every worker with RANK, WORLD_SIZE and
// LOCAL_RANK and expect it to meet the others through c10d at MASTER_ADDR:MASTER_PORT.
// pajama's ranks come from MPI (mpirun) or SLURM (srun) instead; without those, N such
// workers would be N independent one-rank trainings.
[[noreturn]] void refuse_torchrun(long long world_size, const std::string& what) {
  PAJAMA_FAIL_AS(ConfigError, "RANK=", env_or("RANK", "?"), ", WORLD_SIZE=", world_size, ", LOCAL_RANK=",
                 env_or("LOCAL_RANK", "?"), what, ". pajama does not rendezvous through torchrun/c10d ",
                 "(MASTER_ADDR, MASTER_PORT): these ", world_size, " processes would be ", world_size,
                 " independent one-rank trainings. Start one process per GPU with `mpirun -np ", world_size,
                 " pajama train --config ...` (launch/mpirun.sh across nodes) or, under SLURM, with ",
                 "`srun pajama train --config ...` (launch/slurm.sbatch); see docs/DISTRIBUTED.md");
}

}  // namespace

World discover_world() {
  World w;
  long long torch_world = 0;
  const bool torch_vars =
      std::getenv("RANK") != nullptr && env_int_lenient("WORLD_SIZE", torch_world) && torch_world > 1;
  // A torchrun worker also inherits its agent's MPI/SLURM variables (one agent per node:
  // the same SLURM_PROCID for all of its workers), so none of them can be trusted.
  if (torch_vars && std::getenv("TORCHELASTIC_RUN_ID") != nullptr) {
    refuse_torchrun(torch_world, " and TORCHELASTIC_RUN_ID are set: this process was started by torchrun");
  }
  if (env_int("OMPI_COMM_WORLD_RANK", w.rank)) {
    w.launcher = "openmpi";
    PAJAMA_CHECK_AS(ConfigError, env_int("OMPI_COMM_WORLD_SIZE", w.size),
                    "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
    if (!env_int("OMPI_COMM_WORLD_LOCAL_RANK", w.local_rank)) w.local_rank = w.rank;
    if (!env_int("OMPI_COMM_WORLD_LOCAL_SIZE", w.local_size)) w.local_size = w.size;
  } else if (in_srun_step() && env_int("SLURM_PROCID", w.rank)) {
    w.launcher = "slurm";
    PAJAMA_CHECK_AS(ConfigError, env_int("SLURM_NTASKS", w.size) || env_int("SLURM_NPROCS", w.size),
                    "SLURM_PROCID is set but SLURM_NTASKS is not; start with srun");
    if (!env_int("SLURM_LOCALID", w.local_rank)) w.local_rank = 0;
    if (!env_int("SLURM_NTASKS_PER_NODE", w.local_size)) {
      int nodes = 1;
      env_int("SLURM_NNODES", nodes);
      w.local_size = nodes > 0 ? (w.size + nodes - 1) / nodes : w.size;
    }
  } else if (env_int("PMI_RANK", w.rank)) {
    w.launcher = "pmi";
    PAJAMA_CHECK_AS(ConfigError, env_int("PMI_SIZE", w.size), "PMI_RANK is set but PMI_SIZE is not");
    if (!env_int("MPI_LOCALRANKID", w.local_rank)) w.local_rank = w.rank;
    if (!env_int("MPI_LOCALNRANKS", w.local_size)) w.local_size = w.size;
  } else if (std::getenv("SLURM_JOB_ID") != nullptr || std::getenv("SLURM_PROCID") != nullptr) {
    // Inside a SLURM job but not an srun task: the batch script or an salloc shell, one
    // process whatever the job holds (SLURM_PROCID may say 0 and SLURM_NTASKS the job's count).
    int tasks = 1, nodes = 1;
    if (!env_int("SLURM_NTASKS", tasks)) env_int("SLURM_NPROCS", tasks);
    if (!env_int("SLURM_JOB_NUM_NODES", nodes)) env_int("SLURM_NNODES", nodes);
    PAJAMA_CHECK_AS(ConfigError, tasks <= 1 && nodes <= 1, "pajama train was started directly in the batch ",
                    "script (or salloc shell) of SLURM job ", env_or("SLURM_JOB_ID", "?"), ", which has ", tasks,
                    " task(s) on ", nodes, " node(s), not as the tasks of an srun step (no step number in ",
                    "SLURM_STEP_ID): this one process would train alone. Start one task per GPU with ",
                    "`srun pajama train --config ...` (launch/slurm.sbatch does); see docs/DISTRIBUTED.md");
  } else if (torch_vars) {
    refuse_torchrun(torch_world, " are set (torchrun, torch.distributed.launch) but no MPI or srun rank variables");
  }
  PAJAMA_CHECK_AS(ConfigError, w.size >= 1 && w.rank < w.size, "rank ", w.rank, " is outside a world of ", w.size,
                  " (launcher ", w.launcher, ")");
  PAJAMA_CHECK_AS(ConfigError, w.local_size >= 1 && w.local_rank < w.local_size, "local rank ", w.local_rank,
                  " is outside a node of ", w.local_size, " (launcher ", w.launcher, ")");
  return w;
}

}  // namespace pajama
