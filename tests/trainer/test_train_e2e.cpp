// End-to-end runs of the real executable on the CPU: the tiny config learns, and the
// same run on 1, 2 and 4 MPI ranks and under ZeRO stages 0, 1 and 2 gives the same
// loss and gradient norm at every step.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/support.h"

namespace pajama {
namespace {

using testing::TempDir;

using Record = testing::MetricRecord;
using testing::read_metrics;

std::string train_cmd(const std::string& run_dir, const std::string& extra) {
  return testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml --set run.output_dir=" +
         run_dir + " " + extra;
}

TEST(TrainE2E, TinyConfigOnMockDataLearns) {
  TempDir dir;
  const auto r = testing::run_command(
      "env OMP_NUM_THREADS=1 " +
      train_cmd(dir.str("run"), "--set checkpoint.every_steps=0 --set checkpoint.save_final=false"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = read_metrics(dir.path() / "run");
  ASSERT_EQ(m.size(), 20u) << r.output;
  EXPECT_EQ(m.back().step, 200);
  EXPECT_GT(m.front().loss, 6.0) << "the first logged loss should be near ln(4096) = 8.3";
  EXPECT_LT(m.back().loss, 0.5 * m.front().loss) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "run" / "config.yaml"));
  EXPECT_NE(r.output.find("step    200/200 | loss"), std::string::npos) << r.output;
  // Log lines start with the local time; the run's name is logged; OMP_NUM_THREADS is honoured.
  EXPECT_TRUE(std::regex_search(r.output, std::regex("(^|\\n)[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} run tiny: ")))
      << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\n[0-9-]{10} [0-9:]{8} step    200/200 \\| loss"))) << r.output;
  EXPECT_NE(r.output.find("CPU threads per rank: 1 (OMP_NUM_THREADS)"), std::string::npos) << r.output;
}

// The golden curve: the tiny config's first 30 steps on one rank in fp32 with one thread,
// against values recorded in tests/trainer/golden/tiny_fp32_cpu.json. Any change to the
// numerics (initialisation, data order, an op's formula or order of summation, the
// optimizer) moves them by far more than the tolerance. A deliberate change is recorded
// with PAJAMA_UPDATE_GOLDEN=1 (the test then rewrites the file and fails once, so an
// update is never silent) and explained in the commit. The tolerance, 1e-6 relative,
// only absorbs another x86 CPU's vector width (AVX2 vs AVX-512 sums in another order).
TEST(TrainE2E, TinyLossCurveMatchesTheGoldenValues) {
  TempDir dir;
  const std::string args =
      "--set train.max_steps=30 --set log.every_steps=1 --set train.threads=1 --set checkpoint.every_steps=0 "
      "--set checkpoint.save_final=false";
  const auto r = testing::run_command(train_cmd(dir.str("run"), args));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto m = read_metrics(dir.path() / "run");
  ASSERT_EQ(m.size(), 30u) << r.output;
  const auto golden = std::filesystem::path(testing::source_dir()) / "tests/trainer/golden/tiny_fp32_cpu.json";
  const char* update = std::getenv("PAJAMA_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream out(golden);
    out << "{\"what\": " << nlohmann::json("pajama train --config configs/tiny.yaml " + args + " (1 rank, fp32, CPU)")
        << ",\n \"steps\": [\n";
    for (size_t i = 0; i < m.size(); ++i) {
      out << "  " << nlohmann::json{{"step", m[i].step}, {"loss", m[i].loss}, {"grad_norm", m[i].grad_norm}}
          << (i + 1 < m.size() ? ",\n" : "\n");
    }
    out << " ]}\n";
    FAIL() << "rewrote " << golden << "; commit it with the reason the numerics changed";
  }
  const auto j = nlohmann::json::parse(testing::read_file(golden));
  ASSERT_EQ(j.at("steps").size(), m.size()) << golden;
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& g = j["steps"][i];
    ASSERT_EQ(m[i].step, g.at("step").get<int64_t>());
    const double loss = g.at("loss").get<double>(), gnorm = g.at("grad_norm").get<double>();
    EXPECT_NEAR(m[i].loss, loss, 1e-6 * std::abs(loss)) << "step " << m[i].step << " (see " << golden << ")";
    EXPECT_NEAR(m[i].grad_norm, gnorm, 1e-6 * std::abs(gnorm)) << "step " << m[i].step;
  }
}

// vocab 4097 makes the parameter count odd, so no rank count divides it evenly.
constexpr const char* kEquivalence =
    "--set train.max_steps=12 --set log.every_steps=1 --set checkpoint.every_steps=0 "
    "--set checkpoint.save_final=false --set model.vocab_size=4097 --set train.threads=1 --set optim.warmup_steps=3 ";

void expect_same_curve(const std::vector<Record>& ref, const std::vector<Record>& got, const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_NEAR(got[i].loss, ref[i].loss, 1e-5 * std::abs(ref[i].loss)) << what << " step " << ref[i].step;
    EXPECT_NEAR(got[i].grad_norm, ref[i].grad_norm, 1e-4 * std::abs(ref[i].grad_norm) + 1e-7)
        << what << " step " << ref[i].step;
    EXPECT_DOUBLE_EQ(got[i].lr, ref[i].lr) << what;
  }
}

TEST(TrainE2E, SameLossOnOneTwoAndFourRanksAndEveryZeroStage) {
  TempDir dir;
  const auto ref_run = testing::run_command(train_cmd(dir.str("np1"), kEquivalence));
  ASSERT_EQ(ref_run.exit_code, 0) << ref_run.output;
  const auto ref = read_metrics(dir.path() / "np1");
  ASSERT_EQ(ref.size(), 12u);
  EXPECT_LT(ref.back().loss, ref.front().loss);
  for (int np : {2, 4}) {
    for (int stage : {0, 1, 2}) {
      const std::string name = "np" + std::to_string(np) + "_z" + std::to_string(stage);
      const auto r = testing::run_command(testing::mpirun(np) + train_cmd(dir.str(name), kEquivalence) +
                                          "--set parallel.zero_stage=" + std::to_string(stage));
      ASSERT_EQ(r.exit_code, 0) << name << "\n" << r.output;
      expect_same_curve(ref, read_metrics(dir.path() / name), name);
      if (stage == 2) {
        // The partition the optimizer reports equals what `pajama info --ranks N` promises.
        const auto at = r.output.find("partition ");
        ASSERT_NE(at, std::string::npos) << r.output;
        const std::string partition = r.output.substr(at + 10, r.output.find(',', at) - at - 10);
        const auto info = testing::run_command(testing::pajama_exe() + " info --json --config " +
                                               testing::source_dir() +
                                               "/configs/tiny.yaml --set model.vocab_size=4097 --ranks " +
                                               std::to_string(np));
        ASSERT_EQ(info.exit_code, 0) << info.output;
        EXPECT_EQ(std::to_string(testing::last_json_line(info.output).at("memory").at("partition_numel").get<int64_t>()),
                  partition)
            << "optimizer partition " << partition << "\n" << info.output;
      }
    }
  }
}

// train.dtype: bf16 on the CPU runs the GPU's mixed-precision path (bf16 parameters and
// activations; fp32 master weights, AdamW state, gradient accumulation, reduction and
// loss). After 150 steps the tiny config's loss must be within 5% of fp32's (the issue's
// bar). Measured on the CPU: 1.2693 for both at step 150, and within 0.1% at every logged
// step before it; bf16 rounds activations to 8 mantissa bits, which for this model moves
// the curve far less than 5%, so a failure here means the precision logic is broken.
TEST(TrainE2E, Bf16OnTheCpuTracksFp32) {
  TempDir dir;
  const std::string common = "--set train.max_steps=150 --set log.every_steps=10 --set checkpoint.every_steps=0 "
                             "--set checkpoint.save_final=false ";
  const auto fp32 = testing::run_command(train_cmd(dir.str("fp32"), common + "--set train.dtype=fp32"));
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  const auto bf16 = testing::run_command(train_cmd(dir.str("bf16"), common + "--set train.dtype=bf16"));
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_NE(bf16.output.find("device cpu BFloat16"), std::string::npos) << bf16.output;
  const auto a = read_metrics(dir.path() / "fp32"), b = read_metrics(dir.path() / "bf16");
  ASSERT_EQ(a.size(), 15u);
  ASSERT_EQ(b.size(), 15u);
  EXPECT_LT(a.back().loss, 0.6 * a.front().loss);
  EXPECT_NEAR(b.back().loss, a.back().loss, 0.05 * a.back().loss) << "fp32 " << a.back().loss << ", bf16 " << b.back().loss;
}

// bf16 on 1, 2 and 4 ranks: the fp32 reduction and accumulation make the ranks agree to
// bf16 accuracy (a different summation order of fp32 partial sums can flip the last bit
// of a bf16 weight, 2^-8 relative): 1% on losses over 12 steps.
TEST(TrainE2E, Bf16AgreesOnOneTwoAndFourRanks) {
  TempDir dir;
  const std::string bf16 = std::string(kEquivalence) + "--set train.dtype=bf16 ";
  const auto ref_run = testing::run_command(train_cmd(dir.str("np1"), bf16));
  ASSERT_EQ(ref_run.exit_code, 0) << ref_run.output;
  const auto ref = read_metrics(dir.path() / "np1");
  ASSERT_EQ(ref.size(), 12u);
  for (int np : {2, 4}) {
    const std::string name = "np" + std::to_string(np);
    const auto r = testing::run_command(testing::mpirun(np) + train_cmd(dir.str(name), bf16));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto got = read_metrics(dir.path() / name);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(got[i].loss, ref[i].loss, 1e-2 * ref[i].loss) << name << " step " << ref[i].step;
      EXPECT_NEAR(got[i].grad_norm, ref[i].grad_norm, 5e-2 * ref[i].grad_norm) << name << " step " << ref[i].step;
    }
  }
}

TEST(TrainE2E, UnevenBatchOverRanksIsAConfigError) {
  TempDir dir;
  const auto r = testing::run_command(testing::mpirun(2) +
                                      train_cmd(dir.str("run"), "--set train.global_batch_size=12"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("does not split evenly"), std::string::npos) << r.output;
}

// train.nonfinite / train.spike_factor with a NaN (or a huge factor) injected into one
// rank's loss through the PAJAMA_TEST_NAN hook: every rank skips the same step, says so,
// and training continues; too many skips in a row, or train.nonfinite: stop, end the run
// with a non-zero exit naming the step and the data.
struct JsonRecords {
  std::vector<nlohmann::json> lines;
};
JsonRecords read_jsonl(const std::filesystem::path& p) {
  JsonRecords out;
  std::istringstream in(testing::read_file(p));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.lines.push_back(nlohmann::json::parse(line));
  }
  return out;
}

constexpr const char* kSkipRun =
    "--set log.every_steps=1 --set checkpoint.every_steps=0 --set checkpoint.save_final=false --set train.threads=1 ";

TEST(TrainE2E, NonFiniteLossOnOneRankSkipsTheStepOnEveryRank) {
  TempDir dir;
  const auto r = testing::run_command("env PAJAMA_TEST_NAN=1:5 " + testing::mpirun(2) + "-x PAJAMA_TEST_NAN " +
                                      train_cmd(dir.str("run"), std::string(kSkipRun) + "--set train.max_steps=8"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* rank : {"[rank 0]", "[rank 1]"}) {
    EXPECT_NE(r.output.find(std::string(rank) + " warning: step 5 skipped (non-finite loss or gradient norm"),
              std::string::npos)
        << r.output;
  }
  const auto skips = read_jsonl(dir.path() / "run" / "skipped_steps.jsonl").lines;
  ASSERT_EQ(skips.size(), 1u);
  EXPECT_EQ(skips[0].at("step"), 5);
  EXPECT_EQ(skips[0].at("samples"), nlohmann::json::array({64, 80}));  // 4 steps x 16 before it
  const auto metrics = read_jsonl(dir.path() / "run" / "metrics.jsonl").lines;
  ASSERT_EQ(metrics.size(), 8u);
  for (const auto& m : metrics) {
    const int64_t step = m.at("step");
    EXPECT_EQ(m.at("skipped_steps").get<int64_t>(), step >= 5 ? 1 : 0) << m.dump();
    if (step != 5) {
      EXPECT_TRUE(std::isfinite(m.at("loss").get<double>())) << m.dump();
    }
  }
  EXPECT_LT(metrics.back().at("loss").get<double>(), metrics.front().at("loss").get<double>());
}

TEST(TrainE2E, TooManySkipsInARowOrNonfiniteStopEndTheRun) {
  TempDir dir;
  auto r = testing::run_command("env PAJAMA_TEST_NAN=0:3:5 " + testing::mpirun(2) + "-x PAJAMA_TEST_NAN " +
                                train_cmd(dir.str("a"), std::string(kSkipRun) +
                                                            "--set train.max_steps=10 --set train.max_consecutive_skips=2"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3 steps in a row were skipped (train.max_consecutive_skips 2), the last at step 5 (data: "
                          "global samples [64, 80))"),
            std::string::npos)
      << r.output;
  r = testing::run_command("env PAJAMA_TEST_NAN=1:2 " + testing::mpirun(2) + "-x PAJAMA_TEST_NAN " +
                           train_cmd(dir.str("b"), std::string(kSkipRun) +
                                                       "--set train.max_steps=10 --set train.nonfinite=stop"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step 2: the loss or the gradients are not finite on at least one rank (data: global samples "
                          "[16, 32)); train.nonfinite is stop"),
            std::string::npos)
      << r.output;
}

TEST(TrainE2E, GradientNormSpikeIsSkipped) {
  TempDir dir;
  // Rank 0's loss x 1e4 at step 24: its gradient norm is far above 10 x the median of the
  // 23 before it.
  const auto r = testing::run_command("env PAJAMA_TEST_NAN=0:24:1:1e4 " +
                                      train_cmd(dir.str("run"), std::string(kSkipRun) +
                                                                    "--set train.max_steps=26 --set train.spike_factor=10"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto skips = read_jsonl(dir.path() / "run" / "skipped_steps.jsonl").lines;
  ASSERT_EQ(skips.size(), 1u) << r.output;
  EXPECT_EQ(skips[0].at("step"), 24);
  EXPECT_NE(skips[0].at("reason").get<std::string>().find("> train.spike_factor 10 x running median"),
            std::string::npos)
      << skips[0].dump();
  EXPECT_GT(skips[0].at("grad_norm").get<double>(), 100.0);
}

// Hang forensics: one rank stalled in a collective (PAJAMA_TEST_COMM_STALL makes its
// collective number SEQ wait out the deadline as if a peer never came). Every rank prints
// its recent collectives with the pending sequence number, and the job ends non-zero soon
// after the timeout. The first step has its own, longer deadline.
TEST(TrainE2E, StalledCollectiveEndsTheJobWithEveryRanksRecentCollectives) {
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = testing::run_command("env PAJAMA_TEST_COMM_STALL=1:30 " + testing::mpirun(2) + "-x PAJAMA_TEST_COMM_STALL " +
                                train_cmd(dir.str("a"), std::string(kSkipRun) +
                                                            "--set train.max_steps=50 --set parallel.timeout_s=4"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(seconds, 30.0) << "the job must end soon after the 4 s timeout";
  for (int rank : {0, 1}) {
    const std::string head = "recent collectives of rank " + std::to_string(rank);
    const auto at = r.output.find(head);
    ASSERT_NE(at, std::string::npos) << r.output;
    const std::string dump = r.output.substr(at, 4000);
    EXPECT_NE(dump.find("seq     30"), std::string::npos) << dump;
    EXPECT_NE(dump.find("PENDING for"), std::string::npos) << dump;
    EXPECT_NE(dump.find("from zero: gradient norm"), std::string::npos) << dump;
  }
  // In the first step (collective 6, its gradient norm) the deadline is parallel.first_step_timeout_s.
  r = testing::run_command("env PAJAMA_TEST_COMM_STALL=0:6 " + testing::mpirun(2) + "-x PAJAMA_TEST_COMM_STALL " +
                           train_cmd(dir.str("b"), std::string(kSkipRun) +
                                                       "--set train.max_steps=5 --set parallel.timeout_s=2 "
                                                       "--set parallel.first_step_timeout_s=5"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("timed out after 5 s"), std::string::npos) << r.output;
}

// WSD: a stable-phase checkpoint annealed by resuming it with a decay start: the steps
// before follow the peak lr, the resumed ones decay to the minimum, the change is logged.
TEST(TrainE2E, WsdStablePhaseCheckpointIsAnnealedOnResume) {
  TempDir dir;
  const std::string base = train_cmd(dir.str("run"), "--set log.every_steps=1 --set train.threads=1 "
                                                      "--set optim.schedule=wsd --set optim.warmup_steps=2 "
                                                      "--set optim.lr=1e-3 --set optim.min_lr_ratio=0.1 ");
  auto r = testing::run_command(base + "--set train.max_steps=6 --set optim.decay_start=1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(base + "--set train.max_steps=10 --set optim.decay_start=6 --set optim.decay_shape=linear");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("optim.decay_start: 1000 -> 6"), std::string::npos) << r.output;
  const auto m = read_metrics(dir.path() / "run");
  ASSERT_EQ(m.size(), 10u);
  for (const auto& rec : m) {
    const int64_t step0 = rec.step - 1;  // the lr of a logged step is that of its 0-based index
    const double want = step0 < 2 ? 1e-3 * (step0 + 1) / 2 : step0 < 6 ? 1e-3 : 1e-4 + 9e-4 * (1 - (step0 - 6) / 4.0);
    EXPECT_NEAR(rec.lr, want, 1e-12) << "step " << rec.step;
  }
}

// Metrics after a resume from an older checkpoint: the steps logged past it by the
// process that died are dropped from metrics.jsonl and, through a SessionLog START,
// from what TensorBoard's own reader shows; validation scalars are in TensorBoard too.
TEST(TrainE2E, ResumedRunShowsEveryStepOnceInMetricsAndTensorBoard) {
  TempDir dir;
  const std::string run = dir.str("run");
  const std::string base = train_cmd(run, "--set log.every_steps=1 --set train.threads=1 --set eval.every_steps=2 "
                                          "--set eval.batches=1 --set checkpoint.every_steps=4 ");
  // Steps 5 and 6 are logged but never checkpointed; the second run resumes at 4.
  auto r = testing::run_command(base + "--set train.max_steps=6 --set checkpoint.save_final=false");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command(base + "--set train.max_steps=8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dropped 2 record(s) of later steps"), std::string::npos) << r.output;
  std::vector<int64_t> steps;
  for (const auto& m : read_metrics(run)) steps.push_back(m.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  std::vector<int64_t> eval_steps;
  for (const auto& e : read_jsonl(std::filesystem::path(run) / "eval.jsonl").lines) eval_steps.push_back(e.at("step"));
  EXPECT_EQ(eval_steps, (std::vector<int64_t>{2, 4, 6, 8}));

  r = testing::run_command(testing::python() + " " + testing::source_dir() +
                           "/tests/trainer/tb_read.py " + run + "/tb");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto tb = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  const auto steps_of = [&](const std::string& tag) {
    std::vector<int64_t> out;
    for (const auto& e : tb.at(tag)) out.push_back(e[0].get<int64_t>());
    return out;
  };
  EXPECT_EQ(steps_of("train/loss"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8})) << tb.dump();
  EXPECT_EQ(steps_of("eval/loss"), (std::vector<int64_t>{2, 4, 6, 8})) << tb.dump();
  EXPECT_EQ(steps_of("eval/mock/loss"), (std::vector<int64_t>{2, 4, 6, 8})) << tb.dump();
  EXPECT_TRUE(tb.contains("perf/peak_memory_mb"));
  EXPECT_TRUE(tb.contains("train/skipped_steps"));
  // The resumed run's step 5 replaces the dead one's: the last loss logged for it.
  EXPECT_NEAR(tb.at("train/loss")[4][1].get<double>(), read_metrics(run)[4].loss, 1e-5);
}

// Validation per source: two prefixes with their valid_fraction parts, named, are
// evaluated and reported separately plus their weighted total, the same on 1, 2 and 4
// ranks.
TEST(TrainE2E, ValidationPerSourceIsTheSameOnOneTwoAndFourRanks) {
  TempDir dir;
  const char* words[2][6] = {{"river", "stone", "light", "garden", "winter", "harbor"},
                             {"alpha", "beta", "gamma", "delta", "omega", "sigma"}};
  for (int c = 0; c < 2; ++c) {
    std::ofstream out(dir.path() / (c == 0 ? "a.jsonl" : "b.jsonl"));  // one document per line
    for (int i = 0; i < 1500; ++i) {
      out << "{\"text\": \"";
      for (int w = 0; w < 10; ++w) out << words[c][(i * 5 + w * w + c) % 6] << (w == 9 ? "\"}\n" : " ");
    }
  }
  const std::string exe = testing::pajama_exe();
  auto r = testing::run_command(exe + " tokenizer train --input " + dir.str("a.jsonl") + " " + dir.str("b.jsonl") +
                                " --vocab-size 320 --output " + dir.str("tok/t"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* c : {"a", "b"}) {
    r = testing::run_command(exe + " prepare --input " + dir.str(std::string(c) + ".jsonl") + " --tokenizer " +
                             dir.str("tok/t.model") + " --output " + dir.str(std::string("shard_") + c) +
                             " --no-progress");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const std::string data = "--set data.source=shards --set data.tokenizer=" + dir.str("tok/t.model") +
                           " --set 'data.datasets=[{path: " + dir.str("shard_a") + ", weight: 3, name: words}, "
                           "{path: " + dir.str("shard_b") + ", weight: 1}]' --set data.valid_fraction=0.1"
                           " --set model.vocab_size=320 --set train.max_steps=2 --set eval.every_steps=2"
                           " --set eval.batches=2 --set train.threads=1 --set checkpoint.save_final=false ";
  std::vector<nlohmann::json> evals;
  for (int np : {1, 2, 4}) {
    const std::string run = dir.str("np" + std::to_string(np));
    r = testing::run_command((np > 1 ? testing::mpirun(np) : std::string()) + train_cmd(run, data));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto lines = read_jsonl(std::filesystem::path(run) / "eval.jsonl").lines;
    ASSERT_EQ(lines.size(), 1u);
    evals.push_back(lines[0]);
    if (np == 1) {
      EXPECT_NE(r.output.find("| words "), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("| shard_b "), std::string::npos) << r.output;
    }
  }
  const auto& ref = evals[0];
  const double a = ref.at("sources").at("words"), b = ref.at("sources").at("shard_b");
  EXPECT_NEAR(ref.at("eval_loss").get<double>(), (3 * a + b) / 4, 1e-9) << ref.dump();
  EXPECT_GT(std::abs(a - b), 1e-4) << "two different sources: " << ref.dump();
  for (size_t i = 1; i < evals.size(); ++i) {
    for (const char* name : {"words", "shard_b"}) {
      const double want = ref.at("sources").at(name), got = evals[i].at("sources").at(name);
      EXPECT_NEAR(got, want, 1e-5 * want) << name << " on " << (i == 1 ? 2 : 4) << " ranks";
    }
  }
}

}  // namespace
}  // namespace pajama
