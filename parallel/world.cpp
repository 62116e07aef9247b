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

}  // namespace

World discover_world() {
  World w;
  if (env_int("OMPI_COMM_WORLD_RANK", w.rank)) {
    w.launcher = "openmpi";
    PAJAMA_CHECK_AS(ConfigError, env_int("OMPI_COMM_WORLD_SIZE", w.size),
                    "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
    if (!env_int("OMPI_COMM_WORLD_LOCAL_RANK", w.local_rank)) w.local_rank = w.rank;
    if (!env_int("OMPI_COMM_WORLD_LOCAL_SIZE", w.local_size)) w.local_size = w.size;
  } else if (env_int("SLURM_PROCID", w.rank)) {
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
  }
  PAJAMA_CHECK_AS(ConfigError, w.size >= 1 && w.rank < w.size, "rank ", w.rank, " is outside a world of ", w.size,
                  " (launcher ", w.launcher, ")");
  PAJAMA_CHECK_AS(ConfigError, w.local_size >= 1 && w.local_rank < w.local_size, "local rank ", w.local_rank,
                  " is outside a node of ", w.local_size, " (launcher ", w.launcher, ")");
  return w;
}

}  // namespace pajama
