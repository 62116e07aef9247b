#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pajama {

void LrScheduleConfig::validate() const {
  PAJAMA_CHECK_AS(ConfigError, lr > 0, "optim.lr must be positive, got ", lr);
  PAJAMA_CHECK_AS(ConfigError, min_lr_ratio >= 0 && min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1], got ",
                  min_lr_ratio);
  PAJAMA_CHECK_AS(ConfigError, warmup_steps >= 0, "optim.warmup_steps must be >= 0, got ", warmup_steps);
  PAJAMA_CHECK_AS(ConfigError, decay_steps >= 0, "optim.decay_steps must be >= 0, got ", decay_steps);
  PAJAMA_CHECK_AS(ConfigError, schedule == "cosine" || schedule == "linear" || schedule == "constant",
                  "optim.schedule must be one of cosine, linear, constant; got '", schedule, "'");
}

double learning_rate(const LrScheduleConfig& cfg, int64_t step, int64_t max_steps) {
  // Warmup counts from 1 so the first step already moves the weights.
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) {
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  }
  if (cfg.schedule == "constant") return cfg.lr;
  const int64_t end = cfg.decay_steps > 0 ? cfg.decay_steps : max_steps;
  const double min_lr = cfg.lr * cfg.min_lr_ratio;
  const int64_t span = std::max<int64_t>(1, end - cfg.warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - cfg.warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  const double factor = cfg.schedule == "cosine" ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress))
                                                 : 1.0 - progress;
  return min_lr + (cfg.lr - min_lr) * factor;
}

}  // namespace pajama
