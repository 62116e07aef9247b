// A rank that fails mid-step must end the whole mpirun job with a non-zero exit, with
// the cause in the log, instead of leaving its peers waiting forever.
#include <gtest/gtest.h>

#include <string>

#include "common/support.h"

namespace {

using pajama::testing::CommandResult;

CommandResult run_job(const std::string& mode) {
  return pajama::testing::run_command(std::string(PAJAMA_MPIEXEC) +
                                      " -n 2 --oversubscribe --allow-run-as-root --bind-to none " +
                                      PAJAMA_FAIL_PROGRAM + " " + mode);
}

TEST(ParallelFailure, ControlRunExitsZero) {
  const CommandResult o = run_job("ok");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("all ranks finished"), std::string::npos) << o.output;
}

TEST(ParallelFailure, RankThatThrowsEndsTheJobNonZero) {
  const CommandResult o = run_job("throw");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("[rank 1]"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("injected failure on rank 1"), std::string::npos) << o.output;
}

TEST(ParallelFailure, HungRankMakesPeerTimeOutAndEndsTheJobNonZero) {
  const CommandResult o = run_job("hang");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("[rank 0] all_reduce of 1234 fp32 elements timed out after 3 s"), std::string::npos)
      << o.output;
}

}  // namespace
