// Learning-rate schedule: linear warmup, then cosine or linear decay to
// lr * min_lr_ratio at decay_steps, or constant, or warmup-stable-decay (wsd: the peak
// lr until decay_start, then a linear, cosine or 1-sqrt decay to the minimum at
// decay_steps). A pure function of the step, so resuming needs only the step number,
// and a wsd run's stable-phase checkpoint can be annealed by resuming it with another
// decay_start (and max_steps).
#pragma once

#include <cstdint>
#include <string>

namespace pajama {

struct LrScheduleConfig {
  double lr = 3e-4;              // peak learning rate
  double min_lr_ratio = 0.1;     // final lr = lr * min_lr_ratio
  int64_t warmup_steps = 0;      // linear warmup from lr/warmup_steps to lr
  std::string schedule = "cosine";  // cosine | linear | constant | wsd
  int64_t decay_steps = 0;       // step at which decay reaches the minimum; 0 = train.max_steps
  // wsd only: the first step of the decay (0 = the end minus decay_fraction of it),
  // and the decay's shape.
  int64_t decay_start = 0;
  double decay_fraction = 0.2;   // wsd: share of the run the decay takes when decay_start is 0
  std::string decay_shape = "1-sqrt";  // linear | cosine | 1-sqrt (Hägele et al. 2024)
  void validate() const;  // ConfigError about the offending field (core/error.h ConfigField)
};

// lr for optimizer step `step` (0-based) of a run of `max_steps`.
double learning_rate(const LrScheduleConfig& cfg, int64_t step, int64_t max_steps);
// wsd: the step the decay starts at in a run of `max_steps`.
int64_t wsd_decay_start(const LrScheduleConfig& cfg, int64_t max_steps);

}  // namespace pajama
