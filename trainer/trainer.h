// The training loop (STYLE.md #2): train() is a short loop over train_step() and
// named objects with their own "should I run now" rule (metrics, checkpointer, stop
// signals). train_step() fetches this rank's micro-batches, runs forward/backward
// with gradient accumulation, lets the ZeRO optimizer reduce, clip and update, and
// returns the step's figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "data/token_loader.h"
#include "model/llama.h"
#include "parallel/communicator.h"
#include "parallel/host_sync.h"
#include "parallel/world.h"
#include "parallel/zero_optimizer.h"
#include "trainer/checkpointer.h"
#include "trainer/evaluator.h"
#include "trainer/metrics.h"
#include "trainer/train_config.h"

namespace pajama {

struct StepStats {
  torch::Tensor loss_sum;   // this rank's mean micro-batch loss (scalar tensor; read at log steps only)
  double grad_norm = 0;     // NaN when some rank's loss or gradients were not finite
  double lr = 0;
  std::string skipped;      // why the update was skipped ("" = applied)
};

// A test hook, not a user option: PAJAMA_TEST_NAN=RANK:STEP[:COUNT[:FACTOR]] multiplies
// that rank's loss by FACTOR (default NaN) at steps STEP..STEP+COUNT-1 (1-based), to test
// train.nonfinite and train.spike_factor.
struct NanTestHook {
  int rank = -1;
  int64_t step = -1;
  int64_t count = 1;
  double factor = std::numeric_limits<double>::quiet_NaN();
  static NanTestHook from_env();
  bool fires(int r, int64_t s) const { return r == rank && s >= step && s < step + count; }
};

// Exit codes of `pajama train` (README): 0 training reached train.max_steps (or had
// nothing left to do); 1 an error; 2 a config or usage error; kExitStopped a stop signal
// (SIGTERM/SIGINT/SIGUSR1) ended it early after a checkpoint, so running the same command
// again resumes: sysexits' EX_TEMPFAIL, "try again later". Wrappers (launch/slurm.sbatch)
// requeue on it.
constexpr int kExitStopped = 75;

class Trainer {
 public:
  // The communicator outlives the trainer so that an error can still abort the job.
  Trainer(const TrainConfig& cfg, const World& world, Communicator& comm);
  ~Trainer();
  // Runs until train.max_steps or a stop signal. Returns the process exit code.
  int train();

  int64_t step() const { return step_; }

 private:
  StepStats train_step();
  // Decides between applying and skipping the prepared update (train.nonfinite,
  // train.spike_factor); throws when the run must stop. Returns the reason of a skip.
  std::string skip_reason(double grad_norm) const;
  void record_skip(const StepStats& stats);
  void maybe_log(const StepStats& stats);
  // PAJAMA_COUNT_HOST_SYNCS=1: syncs since the last call go to the step's count (in_step)
  // or are dropped (logging, evaluation, saving).
  void start_host_sync_count();
  void count_host_syncs(bool in_step);
  double global_mean_loss(const torch::Tensor& local_loss);
  double max_over_ranks(double value);

  TrainConfig cfg_;
  World world_;
  torch::Device device_;
  torch::Dtype dtype_;
  Communicator& comm_;
  Llama model_{nullptr};
  std::unique_ptr<ZeroOptimizer> optimizer_;
  std::unique_ptr<TokenLoader> loader_;
  std::unique_ptr<MetricsLogger> metrics_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Evaluator> evaluator_;
  std::vector<int32_t> batch_buffer_;
  NanTestHook nan_hook_;
  std::unique_ptr<HostSyncCounter> host_syncs_;  // PAJAMA_COUNT_HOST_SYNCS=1 on CUDA
  int64_t step_syncs_ = 0, step_sync_steps_ = 0;  // counted since the previous metrics record
  std::vector<double> recent_norms_;  // gradient norms of the last applied steps (spike rule)
  int64_t consecutive_skips_ = 0;
  int64_t skipped_steps_ = 0;         // in this process's run
  int64_t step_ = 0;
  int64_t tokens_seen_ = 0;
  double flops_per_token_ = 0;
  double peak_flops_ = 0;
  std::chrono::steady_clock::time_point start_time_;
  std::chrono::steady_clock::time_point last_log_time_;
  int64_t last_log_step_ = 0;
  int64_t rest_memory_bytes_ = 0;  // process RSS (CPU) or allocated bytes (CUDA) before the model existed
};

// `pajama train`: loads the config, runs the trainer, and on an error prints
// "[rank r] error: ..." and aborts the communicator so peers do not hang.
int run_training(const std::string& config_file, const std::vector<std::string>& overrides);

}  // namespace pajama
