// A rank that fails mid-step must end the whole mpirun job with a non-zero exit, with
// the cause in the log, instead of leaving its peers waiting forever.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;
};

Outcome run_job(const std::string& mode) {
  const std::string cmd = std::string(PAJAMA_MPIEXEC) + " -n 2 --oversubscribe --allow-run-as-root --bind-to none " +
                          PAJAMA_FAIL_PROGRAM + " " + mode + " 2>&1";
  Outcome out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t got = 0;
  while ((got = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.output.append(buf.data(), got);
  const int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return out;
}

TEST(ParallelFailure, ControlRunExitsZero) {
  const Outcome o = run_job("ok");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("all ranks finished"), std::string::npos) << o.output;
}

TEST(ParallelFailure, RankThatThrowsEndsTheJobNonZero) {
  const Outcome o = run_job("throw");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("[rank 1]"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("injected failure on rank 1"), std::string::npos) << o.output;
}

TEST(ParallelFailure, HungRankMakesPeerTimeOutAndEndsTheJobNonZero) {
  const Outcome o = run_job("hang");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("[rank 0] all_reduce of 1234 fp32 elements timed out after 3 s"), std::string::npos)
      << o.output;
}

}  // namespace
