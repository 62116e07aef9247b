// The pajama executable on one GPU: the tiny config's bf16 and fp32 CUDA losses against
// the fp32 CPU run for 50 steps, a one-rank NCCL run against the single-rank one, CUDA
// host synchronisations per step counted, and a resume on CUDA against the uninterrupted
// run. Each run prints its device line, so a silent CPU fallback fails the test.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/support.h"
#include "gpu_test_util.h"

namespace pajama {
namespace {

using testing::TempDir;

std::string mpiexec() {
  const char* v = std::getenv("PAJAMA_MPIEXEC");
  return v != nullptr && *v != '\0' ? v : "mpiexec";
}

// The tiny config (4 layers, dim 128, GQA 4/2, vocab 4096, seq 128, 4 micro-steps of 4 on
// one rank) on mock data, logging every step; the schedule is fixed by decay_steps so runs
// of different lengths share it.
std::string train_cmd(const std::string& run_dir, const std::string& device, const std::string& dtype,
                      int64_t steps, const std::string& extra = "") {
  return testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml" +
         " --set run.output_dir=" + run_dir + " --set train.device=" + device + " --set train.dtype=" + dtype +
         " --set train.max_steps=" + std::to_string(steps) +
         " --set optim.warmup_steps=10 --set optim.decay_steps=50 --set log.every_steps=1 "
         "--set checkpoint.every_steps=0 --set checkpoint.save_final=false " +
         extra;
}

std::vector<double> losses(const std::string& run_dir) {
  std::vector<double> out;
  for (const auto& r : testing::read_metrics(run_dir)) out.push_back(r.loss);
  return out;
}

testing::CommandResult run_ok(const std::string& cmd, const std::string& device_line) {
  testing::CommandResult r = testing::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  EXPECT_NE(r.output.find(device_line), std::string::npos) << "expected '" << device_line << "' in\n" << r.output;
  return r;
}

// fp32 on CUDA differs from the CPU in reduction order only: ~1e-6 relative per step,
// which AdamW's normalised updates let grow over 50 steps to the 1e-4 range; 2e-3
// relative per step. bf16 parameters and activations (fp32 master weights, moments and
// loss) round each op to 8 significant bits (2^-9 relative): the first loss differs by
// ~1e-3 and the curves drift apart slowly; 3% relative per step and 1% on the mean of the
// last 10 steps hold for mixed precision that is right and fail for a wrong cast, a lost
// gradient scale or a broken kernel (those move the loss by tens of percent or stop it
// falling).
TEST(GpuTrain, TinyCudaTracksFp32CpuFor50Steps) {
  PAJAMA_NEED_GPU();
  TempDir runs;
  run_ok(train_cmd(runs.str("cpu"), "cpu", "fp32", 50, "--set train.threads=8"), "device cpu Float");
  run_ok(train_cmd(runs.str("f32"), "cuda", "fp32", 50), "device cuda:0 Float");
  run_ok(train_cmd(runs.str("bf16"), "cuda", "bf16", 50), "device cuda:0 BFloat16");
  const auto cpu = losses(runs.str("cpu")), f32 = losses(runs.str("f32")), bf16 = losses(runs.str("bf16"));
  ASSERT_EQ(cpu.size(), 50u);
  ASSERT_EQ(f32.size(), 50u);
  ASSERT_EQ(bf16.size(), 50u);
  double tail_cpu = 0, tail_bf16 = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_LT(std::abs(f32[i] - cpu[i]) / cpu[i], 2e-3) << "fp32 step " << i + 1 << ": " << f32[i] << " vs " << cpu[i];
    EXPECT_LT(std::abs(bf16[i] - cpu[i]) / cpu[i], 3e-2) << "bf16 step " << i + 1 << ": " << bf16[i] << " vs " << cpu[i];
    if (i >= 40) {
      tail_cpu += cpu[i] / 10;
      tail_bf16 += bf16[i] / 10;
    }
  }
  EXPECT_LT(std::abs(tail_bf16 - tail_cpu) / tail_cpu, 1e-2) << "mean of steps 41-50";
  EXPECT_LT(bf16.back(), bf16.front() - 1.0) << "bf16 did not learn";
  std::printf("[bf16 vs fp32 cpu] step 1: %.5f / %.5f; step 50: %.5f / %.5f; fp32 cuda step 50: %.6f\n", bf16[0],
              cpu[0], bf16.back(), cpu.back(), f32.back());
}

// The same run through the NCCL backend (one rank, PAJAMA_NCCL_ONE_RANK=1) and through the
// single-rank communicator: fp32, so both are deterministic, and a one-rank reduction is
// an identity; equal to rounding.
TEST(GpuTrain, NcclOneRankEqualsSingleRank) {
  PAJAMA_NEED_GPU();
  TempDir runs;
  run_ok(train_cmd(runs.str("single"), "cuda", "fp32", 12), "device cuda:0 Float");
  const std::string launch = mpiexec() + " -n 1 --allow-run-as-root --bind-to none -x PAJAMA_NCCL_ONE_RANK=1 ";
  run_ok(launch + train_cmd(runs.str("nccl"), "cuda", "fp32", 12, "--set parallel.timeout_s=60"), "device cuda:0 Float");
  const auto a = losses(runs.str("single")), b = losses(runs.str("nccl"));
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * a[i]) << "step " << i + 1;
}

// Host synchronisations inside training steps (not logging, evaluation or saving): the
// design has exactly one per step, the read of the global gradient norm that decides
// between applying and skipping the update (train.nonfinite, train.spike_factor); the
// batches travel from pinned memory without one. Logging every 5 steps, each record
// covers 5 steps.
TEST(GpuTrain, AtMostOneHostSyncPerStep) {
  PAJAMA_NEED_GPU();
  TempDir runs;
  run_ok("PAJAMA_COUNT_HOST_SYNCS=1 " + train_cmd(runs.str("syncs"), "cuda", "bf16", 20, "--set log.every_steps=5"),
         "counting CUDA host synchronisations");
  const auto recs = testing::read_metrics(runs.str("syncs"));
  ASSERT_EQ(recs.size(), 4u);
  for (const auto& rec : recs) {
    const nlohmann::json& r = rec.json;
    ASSERT_TRUE(r.contains("host_syncs")) << r.dump();
    const int64_t syncs = r.at("host_syncs").get<int64_t>(), steps = r.at("host_sync_steps").get<int64_t>();
    std::printf("[host syncs] step %lld: %lld syncs in %lld steps\n", static_cast<long long>(r.at("step").get<int64_t>()),
                static_cast<long long>(syncs), static_cast<long long>(steps));
    EXPECT_EQ(steps, 5);
    EXPECT_LE(syncs, steps) << r.dump();
  }
}

// Stop at step 10 (checkpoint), resume to 20: steps 11-20 equal the uninterrupted run's.
// fp32 (deterministic kernels), so equal to rounding; the weights go through the GPU
// snapshot and back.
TEST(GpuTrain, ResumeOnCudaContinuesTheRun) {
  PAJAMA_NEED_GPU();
  TempDir runs;
  const std::string save = "--set checkpoint.every_steps=10 --set checkpoint.save_final=true";
  run_ok(train_cmd(runs.str("full"), "cuda", "fp32", 20, save), "device cuda:0 Float");
  run_ok(train_cmd(runs.str("split"), "cuda", "fp32", 10, save), "device cuda:0 Float");
  const auto r = run_ok(train_cmd(runs.str("split"), "cuda", "fp32", 20, save), "device cuda:0 Float");
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  const auto a = losses(runs.str("full")), b = losses(runs.str("split"));
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), 20u);
  for (size_t i = 10; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6 * a[i]) << "step " << i + 1;
}

}  // namespace
}  // namespace pajama
