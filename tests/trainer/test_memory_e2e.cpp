// The memory plan against measurement: the 125m model on 4 CPU ranks under every ZeRO
// stage, with and without activation checkpointing. The plan (`pajama info`) counts
// live memory; the measurement is metrics.jsonl's peak_memory_mb, the largest VmHWM over
// ranks above the process at rest (before the model existed).
//  - With glibc told to return freed blocks at once (MALLOC_MMAP_THRESHOLD_=65536), RSS
//    is live memory: the plan must be within 10% for every stage and mode.
//  - With glibc's defaults, as users run it, freed blocks below its dynamic mmap threshold
//    (up to 32 MiB) stay in the heap and add 2-12% (docs/BENCHMARKS.md); the issue's
//    acceptance shape (no checkpointing, stages 1 and 2) must still be within 10%, and
//    ZeRO-2 must hold at least 250 MB less than ZeRO-1.
// Also: full activation checkpointing at micro-batch 4 x 256 saves at least 500 MB, with
// equal losses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/support.h"

namespace pajama {
namespace {

using testing::TempDir;

struct Shape {
  int64_t ranks, stage, micro_batch;
  std::string checkpointing;
  std::string extra = "";  // more --set overrides (also names the run directory apart)
};

std::string overrides(const Shape& s) {
  const int64_t accumulation = 2;
  std::string out = " --set train.device=cpu --set data.source=mock --set data.valid_fraction=0 --set model.max_seq_len=256"
         " --set train.seq_len=256 --set train.micro_batch_size=" + std::to_string(s.micro_batch) +
         " --set train.global_batch_size=" + std::to_string(s.micro_batch * accumulation * s.ranks) +
         " --set parallel.zero_stage=" + std::to_string(s.stage) + " --set parallel.reduce_bucket_size=5000000" +
         " --set train.activation_checkpointing=" + s.checkpointing +
         " --set train.max_steps=1 --set log.every_steps=1 --set checkpoint.save_final=false"
         " --set checkpoint.every_steps=0 --set train.threads=1";
  out += s.extra;
  return out;
}

std::string config() { return testing::source_dir() + "/configs/125m.yaml"; }

// `pajama info --json`'s planned peak per rank in MB (1e6 bytes, as metrics.jsonl).
double planned_mb(const Shape& s) {
  const auto r = testing::run_command(testing::pajama_exe() + " info --json --config " + config() + " --ranks " +
                                      std::to_string(s.ranks) + overrides(s));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return testing::last_json_line(r.output).at("memory").at("peak_bytes").get<double>() / 1e6;
}

struct Measured {
  double peak_mb = 0;
  double loss = 0;
};

// glibc returning every freed block of 64 KiB or more to the kernel at once.
constexpr const char* kLiveMemory = "MALLOC_MMAP_THRESHOLD_=65536";

Measured train(const Shape& s, const TempDir& dir, const std::string& env = "") {
  std::string name = "s";
  name += std::to_string(s.stage) + "_" + s.checkpointing + "_np" + std::to_string(s.ranks) + "_mb" +
          std::to_string(s.micro_batch);
  if (!env.empty()) name += "_live";
  if (!s.extra.empty()) name += "_extra";
  const std::string run = dir.str(name);
  std::string launcher = env.empty() ? "" : "env " + env + " ";
  if (s.ranks > 1) launcher += testing::mpirun(static_cast<int>(s.ranks)) + (env.empty() ? "" : "-x MALLOC_MMAP_THRESHOLD_ ");
  const auto r = testing::run_command(launcher + testing::pajama_exe() + " train --config " + config() + overrides(s) +
                                      " --set run.output_dir=" + run);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  Measured m;
  for (const auto& rec : testing::read_metrics(run)) {
    m.peak_mb = rec.json.at("peak_memory_mb").get<double>();
    m.loss = rec.loss;
  }
  EXPECT_GT(m.peak_mb, 0) << r.output;
  return m;
}

void expect_plan_close(double plan, const Measured& m, const std::string& what) {
  std::printf("%-36s plan %7.1f MB, measured %7.1f MB (%+.1f%%)\n", what.c_str(), plan, m.peak_mb,
              100.0 * (plan - m.peak_mb) / m.peak_mb);
  EXPECT_NEAR(plan, m.peak_mb, 0.10 * m.peak_mb) << what << ": plan " << plan << " MB, measured " << m.peak_mb << " MB";
}

TEST(MemoryPlan, MatchesLivePeakOnFourRanksForEveryStageAndCheckpointing) {
  TempDir dir;
  std::map<std::string, Measured> got;
  for (int64_t stage : {0, 1, 2}) {
    for (const std::string ck : {"none", "full"}) {
      const Shape s{4, stage, 1, ck};
      const Measured m = train(s, dir, kLiveMemory);
      got[std::to_string(stage) + ck] = m;
      expect_plan_close(planned_mb(s), m, "live, ZeRO-" + std::to_string(stage) + ", checkpointing " + ck);
    }
  }
  // ZeRO-2 keeps a partition of the gradients instead of all of them.
  EXPECT_GE(got["1none"].peak_mb - got["2none"].peak_mb, 250.0);
  EXPECT_GE(got["1full"].peak_mb - got["2full"].peak_mb, 250.0);
  // The same step whatever is held: the losses agree.
  for (const auto& [name, m] : got) EXPECT_NEAR(m.loss, got["0none"].loss, 1e-5 * got["0none"].loss) << name;
}

TEST(MemoryPlan, MatchesPeakRssWithDefaultAllocatorForStagesOneAndTwo) {
  TempDir dir;
  const Shape one{4, 1, 1, "none"}, two{4, 2, 1, "none"};
  const Measured m1 = train(one, dir), m2 = train(two, dir);
  expect_plan_close(planned_mb(one), m1, "default malloc, ZeRO-1");
  expect_plan_close(planned_mb(two), m2, "default malloc, ZeRO-2");
  // At 125m, 4 ranks, 5e6-element buckets: 3/4 of the 536 MB of fp32 gradients less
  // two 20 MB bucket buffers.
  EXPECT_GE(m1.peak_mb - m2.peak_mb, 250.0) << "stage 1 " << m1.peak_mb << " MB, stage 2 " << m2.peak_mb << " MB";
}

// train.trainable (Chinese-LLaMA's stage 1: embedding and head): the frozen 75M of
// 125m's parameters hold weights only. On 2 ranks, ZeRO-2, fp32: the plan follows the
// measurement, and the optimizer's fp32 gradient partition and AdamW moments shrink by
// 12 bytes x 75M / 2 ranks = 450 MB.
TEST(MemoryPlan, FrozenParametersHoldNoGradientsOrOptimizerState) {
  TempDir dir;
  const Shape all{2, 2, 1, "none"};
  const Shape stage1{2, 2, 1, "none", " --set 'train.trainable=[model.embed_tokens.weight, lm_head.weight]'"};
  const Measured m_all = train(all, dir, kLiveMemory), m_stage1 = train(stage1, dir, kLiveMemory);
  expect_plan_close(planned_mb(all), m_all, "live, ZeRO-2, 2 ranks, all trainable");
  expect_plan_close(planned_mb(stage1), m_stage1, "live, ZeRO-2, 2 ranks, embeddings + head");
  EXPECT_GE(m_all.peak_mb - m_stage1.peak_mb, 400.0) << "all " << m_all.peak_mb << " MB, stage 1 " << m_stage1.peak_mb;
}

TEST(MemoryPlan, FullCheckpointingSavesHalfAGigabyteAtMicroBatchFour) {
  TempDir dir;
  const Measured none = train(Shape{1, 2, 4, "none"}, dir);
  const Measured full = train(Shape{1, 2, 4, "full"}, dir);
  EXPECT_GE(none.peak_mb - full.peak_mb, 500.0) << "none " << none.peak_mb << " MB, full " << full.peak_mb << " MB";
  // Recomputation is exact on the CPU in fp32.
  EXPECT_EQ(none.loss, full.loss);
}

}  // namespace
}  // namespace pajama
