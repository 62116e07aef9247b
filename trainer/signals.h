// Stop requests: SIGTERM, SIGINT and SIGUSR1 (what mpirun and SLURM forward, e.g.
// `#SBATCH --signal=USR1@120`) set a flag; the trainer agrees on it across ranks at the
// next step boundary, writes a checkpoint and exits 0.
#pragma once

namespace pajama {

void install_stop_signal_handlers();
// The signal number received (0 when none).
int stop_signal_received();

}  // namespace pajama
