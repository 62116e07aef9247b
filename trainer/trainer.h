// The training loop (STYLE.md #2): train() is a short loop over train_step() and
// named objects with their own "should I run now" rule (metrics, checkpointer, stop
// signals). train_step() fetches this rank's micro-batches, runs forward/backward
// with gradient accumulation, lets the ZeRO optimizer reduce, clip and update, and
// returns the step's figures.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/token_loader.h"
#include "model/llama.h"
#include "parallel/communicator.h"
#include "parallel/world.h"
#include "parallel/zero_optimizer.h"
#include "trainer/checkpointer.h"
#include "trainer/evaluator.h"
#include "trainer/metrics.h"
#include "trainer/train_config.h"

namespace pajama {

struct StepStats {
  torch::Tensor loss_sum;   // this rank's mean micro-batch loss (scalar tensor; read at log steps only)
  double grad_norm = 0;
  double lr = 0;
};

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
  void maybe_log(const StepStats& stats);
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
