#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "trainer/lr_schedule.h"

namespace pajama {
namespace {

TEST(LrSchedule, WarmupIsLinearFromFirstStep) {
  LrScheduleConfig c;
  c.lr = 1.0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(learning_rate(c, 0, 100), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(c, 1, 100), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(c, 3, 100), 1.0);
}

TEST(LrSchedule, CosineMatchesFormula) {
  LrScheduleConfig c;
  c.lr = 2.0;
  c.min_lr_ratio = 0.1;
  c.warmup_steps = 10;
  const double pi = std::acos(-1.0);
  for (int64_t step : {10, 25, 55, 80, 110, 200}) {
    const double progress = std::min(1.0, (step - 10) / 100.0);
    const double expected = 0.2 + (2.0 - 0.2) * 0.5 * (1 + std::cos(pi * progress));
    EXPECT_NEAR(learning_rate(c, step, 110), expected, 1e-12) << "step " << step;
  }
  EXPECT_NEAR(learning_rate(c, 110, 110), 0.2, 1e-12);
}

TEST(LrSchedule, LinearAndConstant) {
  LrScheduleConfig c;
  c.lr = 1.0;
  c.min_lr_ratio = 0.0;
  c.schedule = "linear";
  EXPECT_NEAR(learning_rate(c, 50, 100), 0.5, 1e-12);
  c.schedule = "constant";
  EXPECT_DOUBLE_EQ(learning_rate(c, 99, 100), 1.0);
  c.decay_steps = 40;
  c.schedule = "linear";
  EXPECT_NEAR(learning_rate(c, 20, 100), 0.5, 1e-12);
  EXPECT_NEAR(learning_rate(c, 60, 100), 0.0, 1e-12);
}

TEST(LrSchedule, RejectsUnknownSchedule) {
  LrScheduleConfig c;
  c.schedule = "cosin";
  EXPECT_THROW(c.validate(), ConfigError);
}

// Warmup-stable-decay: the peak lr from the end of warmup to decay_start, then each
// shape from the peak to the minimum at decay_steps (or max_steps), formulas written here.
TEST(LrSchedule, WarmupStableDecay) {
  LrScheduleConfig c;
  c.lr = 2.0;
  c.min_lr_ratio = 0.1;
  c.warmup_steps = 10;
  c.schedule = "wsd";
  c.decay_start = 60;
  c.validate();
  const double pi = std::acos(-1.0);
  for (const std::string shape : {"linear", "cosine", "1-sqrt"}) {
    c.decay_shape = shape;
    EXPECT_DOUBLE_EQ(learning_rate(c, 4, 100), 1.0) << "warmup";
    for (int64_t step : {10, 30, 59}) EXPECT_DOUBLE_EQ(learning_rate(c, step, 100), 2.0) << shape << " stable " << step;
    for (int64_t step : {60, 70, 85, 99}) {
      const double p = (step - 60) / 40.0;
      const double f = shape == "linear" ? 1 - p : shape == "cosine" ? 0.5 * (1 + std::cos(pi * p)) : 1 - std::sqrt(p);
      EXPECT_NEAR(learning_rate(c, step, 100), 0.2 + 1.8 * f, 1e-12) << shape << " step " << step;
    }
    EXPECT_DOUBLE_EQ(learning_rate(c, 100, 100), 0.2);
    EXPECT_DOUBLE_EQ(learning_rate(c, 150, 100), 0.2);
  }
  // Without decay_start the decay takes the last decay_fraction of the run.
  c.decay_start = 0;
  c.decay_fraction = 0.25;
  EXPECT_EQ(wsd_decay_start(c, 200), 150);
  EXPECT_DOUBLE_EQ(learning_rate(c, 149, 200), 2.0);
  EXPECT_LT(learning_rate(c, 151, 200), 2.0);
  // An anneal from a stable-phase checkpoint: the same run resumed with another decay
  // start and length follows the stable lr up to it.
  LrScheduleConfig anneal = c;
  anneal.decay_start = 120;
  anneal.decay_steps = 140;
  EXPECT_DOUBLE_EQ(learning_rate(anneal, 119, 140), 2.0);
  EXPECT_NEAR(learning_rate(anneal, 130, 140), 0.2 + 1.8 * (1 - std::sqrt(0.5)), 1e-12);
  c.decay_shape = "exp";
  EXPECT_THROW(c.validate(), ConfigError);
  c.decay_shape = "linear";
  c.decay_start = 5;
  EXPECT_THROW(c.validate(), ConfigError);  // inside the warmup
}

}  // namespace
}  // namespace pajama
