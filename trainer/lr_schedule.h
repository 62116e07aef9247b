// Learning-rate schedule: linear warmup, then cosine or linear decay to
// lr * min_lr_ratio at decay_steps, or constant. A pure function of the step, so
// resuming needs only the step number.
#pragma once

#include <cstdint>
#include <string>

namespace pajama {

struct LrScheduleConfig {
  double lr = 3e-4;              // peak learning rate (optim.lr)
  double min_lr_ratio = 0.1;     // final lr = lr * min_lr_ratio (optim.min_lr_ratio)
  int64_t warmup_steps = 0;      // linear warmup from lr/warmup_steps to lr (optim.warmup_steps)
  std::string schedule = "cosine";  // cosine | linear | constant (optim.schedule)
  int64_t decay_steps = 0;       // step at which decay reaches the minimum; 0 = train.max_steps (optim.decay_steps)
  void validate() const;
};

// lr for optimizer step `step` (0-based) of a run of `max_steps`.
double learning_rate(const LrScheduleConfig& cfg, int64_t step, int64_t max_steps);

}  // namespace pajama
