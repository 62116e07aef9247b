#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace pajama
