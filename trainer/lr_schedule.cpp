#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pajama {

void LrScheduleConfig::validate() const {
  PAJAMA_CHECK_FIELD(lr > 0, lr, "lr must be positive, got ", lr);
  PAJAMA_CHECK_FIELD(min_lr_ratio >= 0 && min_lr_ratio <= 1, min_lr_ratio, "min_lr_ratio must be in [0, 1], got ",
                     min_lr_ratio);
  PAJAMA_CHECK_FIELD(warmup_steps >= 0, warmup_steps, "warmup_steps must be >= 0, got ", warmup_steps);
  PAJAMA_CHECK_FIELD(decay_steps >= 0, decay_steps, "decay_steps must be >= 0, got ", decay_steps);
  PAJAMA_CHECK_FIELD(schedule == "cosine" || schedule == "linear" || schedule == "constant" || schedule == "wsd",
                     schedule, "schedule must be one of cosine, linear, constant, wsd; got '", schedule, "'");
  if (decay_start < 0) {
    throw ConfigError({PAJAMA_FIELD(decay_start), PAJAMA_FIELD(decay_fraction)},
                      str("decay_start must be >= 0 (0 = from decay_fraction), got ", decay_start));
  }
  PAJAMA_CHECK_FIELD(decay_fraction > 0 && decay_fraction <= 1, decay_fraction,
                     "decay_fraction must be in (0, 1], got ", decay_fraction);
  PAJAMA_CHECK_FIELD(decay_shape == "linear" || decay_shape == "cosine" || decay_shape == "1-sqrt", decay_shape,
                     "decay_shape must be linear, cosine or 1-sqrt; got '", decay_shape, "'");
  if (decay_start != 0 && decay_start < warmup_steps) {
    throw ConfigError({PAJAMA_FIELD(decay_start), PAJAMA_FIELD(warmup_steps)},
                      str("decay_start ", decay_start, " is inside the warmup (warmup_steps ", warmup_steps, ")"));
  }
  if (decay_start != 0 && decay_steps != 0 && decay_start >= decay_steps) {
    throw ConfigError({PAJAMA_FIELD(decay_start), PAJAMA_FIELD(decay_steps)},
                      str("decay_start ", decay_start, " must come before decay_steps ", decay_steps,
                          " (where the decay ends)"));
  }
}

int64_t wsd_decay_start(const LrScheduleConfig& cfg, int64_t max_steps) {
  const int64_t end = cfg.decay_steps > 0 ? cfg.decay_steps : max_steps;
  if (cfg.decay_start > 0) return cfg.decay_start;
  const auto length = static_cast<int64_t>(std::llround(cfg.decay_fraction * static_cast<double>(end)));
  return std::max(cfg.warmup_steps, end - length);
}

double learning_rate(const LrScheduleConfig& cfg, int64_t step, int64_t max_steps) {
  // Warmup counts from 1 so the first step already moves the weights.
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) {
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  }
  if (cfg.schedule == "constant") return cfg.lr;
  const int64_t end = cfg.decay_steps > 0 ? cfg.decay_steps : max_steps;
  const double min_lr = cfg.lr * cfg.min_lr_ratio;
  if (cfg.schedule == "wsd") {
    const int64_t start = wsd_decay_start(cfg, max_steps);
    if (step < start) return cfg.lr;
    if (step >= end) return min_lr;
    const double p = static_cast<double>(step - start) / static_cast<double>(end - start);
    const double factor = cfg.decay_shape == "linear"   ? 1.0 - p
                          : cfg.decay_shape == "cosine" ? 0.5 * (1.0 + std::cos(std::numbers::pi * p))
                                                        : 1.0 - std::sqrt(p);
    return min_lr + (cfg.lr - min_lr) * factor;
  }
  const int64_t span = std::max<int64_t>(1, end - cfg.warmup_steps);
  const double progress =
      std::clamp(static_cast<double>(step - cfg.warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  const double factor = cfg.schedule == "cosine" ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress))
                                                 : 1.0 - progress;
  return min_lr + (cfg.lr - min_lr) * factor;
}

}  // namespace pajama
