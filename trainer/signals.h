// Stop requests: SIGTERM, SIGINT and SIGUSR1 (what mpirun and SLURM forward, e.g.
// `#SBATCH --signal=USR1@120`) set a flag; the trainer agrees on it across ranks at the
// next step boundary, writes a checkpoint and exits kExitStopped (75, trainer/trainer.h).
// SIGINT's handler fires once (SA_RESETHAND): a second Ctrl-C ends the process at once.
#pragma once

namespace pajama {

void install_stop_signal_handlers();
// The signal number received (0 when none).
int stop_signal_received();

}  // namespace pajama
