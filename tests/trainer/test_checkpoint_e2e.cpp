// Checkpoints through the real executable: bit-exact resume on the same number of
// ranks, resharded resume on another, crash safety under SIGKILL, SIGTERM, and
// detection of corrupt or incomplete checkpoints. Trains on real Megatron shards
// written here with the indexed-dataset builder.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "data/indexed_dataset.h"
#include "trainer/memory_plan.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"
#include "common/support.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

using Record = testing::MetricRecord;
using testing::read_metrics;

// Two small datasets of random documents (vocab 4096), blended 0.7/0.3.
class CheckpointE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(7);
    for (const char* name : {"a", "b"}) {
      IndexedDatasetBuilder builder(data_.str(name), TokenDType::kUInt16);
      for (int d = 0; d < 300; ++d) {
        std::vector<int32_t> doc(20 + rng() % 200);
        // Low-entropy documents so the loss moves: runs of a repeated token pattern.
        const int32_t base = static_cast<int32_t>(rng() % 4000);
        for (size_t i = 0; i < doc.size(); ++i) doc[i] = base + static_cast<int32_t>(i % 7);
        builder.add_document(doc);
      }
      builder.finalize();
    }
  }

  std::string cmd(const std::string& run_dir, int64_t max_steps, const std::string& extra = "") const {
    return testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml" +
           " --set run.output_dir=" + run_dir + " --set data.source=shards" + " --set 'data.datasets=[{path: " +
           data_.str("a") + ", weight: 0.7}, {path: " + data_.str("b") + ", weight: 0.3}]'" +
           " --set train.max_steps=" + std::to_string(max_steps) +
           " --set optim.decay_steps=20 --set optim.warmup_steps=4 --set log.every_steps=1 --set train.threads=1"
           " --set model.n_layers=2 --set train.seq_len=64 " +
           extra;
  }

  TempDir data_;
  TempDir runs_;
  testing::CommandResult r_;
};

fs::path final_weights(const fs::path& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
  return run_dir / "checkpoints" / name / "model.safetensors";
}

void expect_identical_files(const fs::path& a, const fs::path& b) {
  ASSERT_TRUE(fs::exists(a)) << a;
  ASSERT_TRUE(fs::exists(b)) << b;
  EXPECT_TRUE(testing::read_file(a) == testing::read_file(b)) << a << " and " << b << " differ";
}

TEST_F(CheckpointE2E, ResumeIsBitExactOnOneAndTwoRanks) {
  for (int np : {1, 2}) {
    SCOPED_TRACE("ranks " + std::to_string(np));
    const std::string launch = np > 1 ? testing::mpirun(np) : "";
    const std::string full = runs_.str("full" + std::to_string(np));
    const std::string split = runs_.str("split" + std::to_string(np));
    auto r = testing::run_command(launch + cmd(full, 20));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = testing::run_command(launch + cmd(split, 10));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = testing::run_command(launch + cmd(split, 20));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
    const auto a = read_metrics(full);
    const auto b = read_metrics(split);
    ASSERT_EQ(a.size(), 20u);
    ASSERT_EQ(b.size(), 20u);
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].step, b[i].step);
      EXPECT_EQ(a[i].loss, b[i].loss) << "step " << a[i].step << " differs after resume";
    }
    expect_identical_files(final_weights(full, 20), final_weights(split, 20));
  }
}

TEST_F(CheckpointE2E, ResumesOnAnotherNumberOfRanks) {
  const std::string ref = runs_.str("ref");
  auto r = testing::run_command(cmd(ref, 16));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto expected = read_metrics(ref);
  struct Case {
    int from, to;
  };
  for (const Case c : {Case{2, 1}, Case{2, 4}, Case{4, 2}}) {
    const std::string name = "from" + std::to_string(c.from) + "to" + std::to_string(c.to);
    SCOPED_TRACE(name);
    const std::string run = runs_.str(name);
    r = testing::run_command(testing::mpirun(c.from) + cmd(run, 8));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = testing::run_command((c.to > 1 ? testing::mpirun(c.to) : "") + cmd(run, 16));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("written by " + std::to_string(c.from) + " rank(s), now " + std::to_string(c.to)),
              std::string::npos)
        << r.output;
    const auto got = read_metrics(run);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].loss, expected[i].loss, 1e-5 * std::abs(expected[i].loss)) << "step " << got[i].step;
    }
  }
}

TEST_F(CheckpointE2E, CorruptOrIncompleteCheckpointIsSkipped) {
  const std::string run = runs_.str("corrupt");
  auto r = testing::run_command(testing::mpirun(2) + cmd(run, 8, "--set checkpoint.every_steps=4 --set checkpoint.keep_last=0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path newest = fs::path(run) / "checkpoints" / "step_00000008";
  // Flip one byte in the newest checkpoint's rank-1 optimizer file.
  {
    const fs::path f = newest / "optim_rank00001.safetensors";
    std::string bytes = testing::read_file(f);
    bytes[bytes.size() / 2] ^= 0x20;
    testing::write_file(f, bytes);
  }
  const std::string keep = "--set checkpoint.keep_last=0";  // step_4 stays the fallback
  r = testing::run_command(testing::mpirun(2) + cmd(run, 10, keep));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("skipping checkpoint " + newest.string() + ": file optim_rank00001.safetensors fails its xxh3_128 check"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("step_00000004 (step 4"), std::string::npos) << r.output;

  // A missing rank file in the (new) newest checkpoint is reported the same way.
  fs::remove(fs::path(run) / "checkpoints" / "step_00000010" / "optim_rank00000.safetensors");
  r = testing::run_command(testing::mpirun(2) + cmd(run, 12, keep));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("file optim_rank00000.safetensors is missing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step_00000004 (step 4"), std::string::npos) << r.output;

  // When no checkpoint verifies, resume: auto refuses to start over from step 0 (a
  // requeued job would throw the run away), names every problem and deletes nothing.
  size_t checkpoints = 0;
  for (const auto& e : fs::directory_iterator(fs::path(run) / "checkpoints")) {
    if (e.is_directory() && e.path().filename().string().starts_with("step_")) {
      ++checkpoints;
      fs::remove(e.path() / "model.safetensors");
    }
  }
  ASSERT_GE(checkpoints, 3u);
  r = testing::run_command(testing::mpirun(2) + cmd(run, 14));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("none of the " + std::to_string(checkpoints) + " checkpoints in " +
                          (fs::path(run) / "checkpoints").string() + " is complete and intact"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("step_00000008: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step_00000012: file model.safetensors is missing"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(run) / "checkpoints" / "step_00000012" / "manifest.json")) << "nothing deleted";
}

// Kills a 2-rank run with SIGKILL at random moments and restarts it; the final weights
// must equal an uninterrupted run's. The test hook PAJAMA_TEST_CHECKPOINT_DELAY_MS
// stretches every file write of the background saves and every step of a commit, so
// most kills land while a save is being written or committed. No restart may find a
// committed checkpoint that fails verification.
TEST_F(CheckpointE2E, SurvivesSigkillAtRandomMoments) {
  const std::string ref = runs_.str("ref");
  const std::string extra = "--set checkpoint.every_steps=2 --set checkpoint.keep_last=2 ";
  auto r = testing::run_command(testing::mpirun(2) + cmd(ref, 30, extra));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  const std::string run = runs_.str("killed");
  const std::string slow = "env PAJAMA_TEST_CHECKPOINT_DELAY_MS=150 ";
  std::mt19937 rng(12345);
  int kills = 0;
  std::string logs;
  for (int attempt = 0; attempt < 6; ++attempt) {
    const std::string log = runs_.str("kill" + std::to_string(attempt) + ".log");
    const pid_t launcher = testing::spawn_command(slow + testing::mpirun(2) + cmd(run, 30, extra), log);
    ASSERT_GT(launcher, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + rng() % 3000));
    const auto ranks = testing::child_pids(launcher);
    if (!ranks.empty()) {
      ::kill(ranks[rng() % ranks.size()], SIGKILL);
      ++kills;
    }
    const int code = testing::wait_exit(launcher);
    logs += testing::read_file(log);
    if (code == 0) break;  // the run finished before the kill landed
  }
  EXPECT_GE(kills, 3);
  r = testing::run_command(testing::mpirun(2) + cmd(run, 30, extra));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  logs += r.output;
  EXPECT_EQ(logs.find("skipping checkpoint"), std::string::npos) << logs;
  EXPECT_NE(logs.find("resumed from"), std::string::npos) << logs;
  expect_identical_files(final_weights(ref, 30), final_weights(run, 30));
}

// An asynchronous save writes the same bytes as a foreground one, and training goes on
// while it is written: with each file's write stretched to 400 ms, steps after the save
// are logged before the save's commit.
TEST_F(CheckpointE2E, AsyncSaveWritesWhileTrainingAndEqualsForegroundSave) {
  const std::string every = "--set checkpoint.every_steps=4 --set checkpoint.keep_last=0 ";
  const std::string fg = runs_.str("foreground");
  const std::string bg = runs_.str("background");
  auto r = testing::run_command(testing::mpirun(2) + cmd(fg, 12, every + "--set checkpoint.async=false"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_command("env PAJAMA_TEST_CHECKPOINT_DELAY_MS=400 " + testing::mpirun(2) +
                           cmd(bg, 12, every + "--set checkpoint.async=true"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("async checkpoint snapshot:"), std::string::npos) << r.output;
  const size_t saved4 = r.output.find("checkpoint saved: " + (fs::path(bg) / "checkpoints" / "step_00000004").string());
  const size_t step5 = r.output.find("step      5/12");
  ASSERT_NE(saved4, std::string::npos) << r.output;
  ASSERT_NE(step5, std::string::npos) << r.output;
  EXPECT_LT(step5, saved4) << "training did not go on while step 4 was being written:\n" << r.output;
  for (const char* step : {"step_00000004", "step_00000008", "step_00000012"}) {
    for (const char* file : {"model.safetensors", "optim_rank00000.safetensors", "optim_rank00001.safetensors",
                             "trainer_state.json", "config.json"}) {
      SCOPED_TRACE(std::string(step) + "/" + file);
      expect_identical_files(fs::path(fg) / "checkpoints" / step / file, fs::path(bg) / "checkpoints" / step / file);
    }
  }
  EXPECT_EQ(read_metrics(fg).back().loss, read_metrics(bg).back().loss);
}

// A background write that fails on one rank ends the run on every rank with an error
// naming the checkpoint; the checkpoint before it stays the newest, and resumes.
TEST_F(CheckpointE2E, FailedBackgroundWriteStopsTheRunAndKeepsTheLastCheckpoint) {
  const std::string run = runs_.str("fail");
  const std::string every = "--set checkpoint.every_steps=4 --set checkpoint.keep_last=0 ";
  auto r = testing::run_command("env PAJAMA_TEST_CHECKPOINT_FAIL=1:8 " + testing::mpirun(2) + cmd(run, 12, every));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("saving checkpoint " + (fs::path(run) / "checkpoints" / "step_00000008").string()),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("injected write failure"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(fs::path(run) / "checkpoints" / "step_00000004" / "manifest.json"));
  EXPECT_FALSE(fs::exists(fs::path(run) / "checkpoints" / "step_00000008"));
  EXPECT_EQ(testing::read_file(fs::path(run) / "checkpoints" / "latest"), "step_00000004\n");
  r = testing::run_command(testing::mpirun(2) + cmd(run, 12, every));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("step_00000004 (step 4"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("skipping checkpoint"), std::string::npos) << r.output;
}

// `pajama info`'s checkpoint figures (trainer/memory_plan.h) against a real checkpoint
// of 2 ranks: the files' sizes on disk and rank 0's logged snapshot memory.
TEST_F(CheckpointE2E, CheckpointPlanMatchesTheFilesAndTheSnapshot) {
  const std::string run = runs_.str("plan");
  const std::string c = cmd(run, 2, "--set checkpoint.keep_last=1");
  auto r = testing::run_command(testing::mpirun(2) + c);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string sets = c.substr(c.find(" --set "));
  std::vector<std::string> overrides;
  {
    // Recover the --set values of the command line (quoted values stay whole).
    std::string rest = sets;
    size_t pos;
    while ((pos = rest.find("--set ")) != std::string::npos) {
      rest = rest.substr(pos + 6);
      std::string value;
      if (rest.front() == '\'') {
        const size_t end = rest.find('\'', 1);
        value = rest.substr(1, end - 1);
        rest = rest.substr(end + 1);
      } else {
        value = rest.substr(0, rest.find(' '));
        rest = rest.substr(value.size());
      }
      overrides.push_back(value);
    }
  }
  const TrainConfig cfg = load_train_config(testing::source_dir() + "/configs/tiny.yaml", overrides);
  const CheckpointPlan plan = plan_checkpoint(cfg, 2, "fp32");
  const fs::path dir = fs::path(run) / "checkpoints" / "step_00000002";
  const auto size = [&](const char* f) { return static_cast<int64_t>(fs::file_size(dir / f)); };
  const int64_t model = size("model.safetensors");
  const int64_t optim = size("optim_rank00000.safetensors") + size("optim_rank00001.safetensors");
  // The plan counts tensor bytes; the files add a JSON header each (a few KB).
  EXPECT_GE(model, plan.model_bytes);
  EXPECT_LT(model, plan.model_bytes + 16384);
  EXPECT_GE(optim, plan.optimizer_bytes);
  EXPECT_LT(optim, plan.optimizer_bytes + 2 * 65536);
  const std::string key = "async checkpoint snapshot: ";
  const size_t at = r.output.find(key);
  ASSERT_NE(at, std::string::npos) << r.output;
  const double logged_mb = std::stod(r.output.substr(at + key.size()));
  EXPECT_NEAR(logged_mb, static_cast<double>(plan.snapshot_rank0_bytes) / 1e6,
              static_cast<double>(plan.snapshot_rank0_bytes) / 1e6 * 0.01);
}

// A scheduler's SIGTERM to the launcher (launch/mpirun.sh) makes every rank write a
// checkpoint at the next step boundary; the job exits with kExitStopped (75, not 0:
// wrappers tell it from a finished run) and the next run resumes.
TEST_F(CheckpointE2E, SigtermToLauncherWritesACheckpointAndExitsStopped) {
  const std::string run = runs_.str("term");
  const std::string train = cmd(run, 100000, "--set checkpoint.every_steps=0 --set optim.decay_steps=100000");
  // launch/mpirun.sh takes the train options after --config; reuse them as --set pairs.
  const std::string sets = train.substr(train.find(" --set "));
  const std::string launcher_cmd = "env OMP_NUM_THREADS=1 " + testing::source_dir() + "/launch/mpirun.sh --np 2 --pajama " +
                                   testing::pajama_exe() + " --config " + testing::source_dir() + "/configs/tiny.yaml" +
                                   sets + " -- --oversubscribe --allow-run-as-root";
  const pid_t launcher = testing::spawn_command(launcher_cmd, runs_.str("term.log"));
  ASSERT_GT(launcher, 0);
  std::this_thread::sleep_for(std::chrono::seconds(6));
  ::kill(launcher, SIGTERM);
  const int code = testing::wait_exit(launcher);
  const std::string log = testing::read_file(runs_.str("term.log"));
  EXPECT_EQ(code, kExitStopped) << log;
  EXPECT_NE(log.find("stop requested by a signal"), std::string::npos) << log;
  const auto before = read_metrics(run);
  ASSERT_FALSE(before.empty()) << log;
  r_ = testing::run_command(testing::mpirun(2) + cmd(run, before.back().step + 2,
                                                     "--set checkpoint.every_steps=0 --set optim.decay_steps=100000"));
  EXPECT_EQ(r_.exit_code, 0) << r_.output;
  EXPECT_NE(r_.output.find("resumed from"), std::string::npos) << r_.output;
  EXPECT_EQ(read_metrics(run).back().step, before.back().step + 2);
}

// Under plain mpirun a SIGUSR1 (which mpirun forwards) does the same.
TEST_F(CheckpointE2E, SigusrToMpirunWritesACheckpointAndExitsStopped) {
  const std::string run = runs_.str("usr1");
  const pid_t launcher =
      testing::spawn_command(testing::mpirun(2) + cmd(run, 100000, "--set checkpoint.every_steps=0"), runs_.str("usr1.log"));
  ASSERT_GT(launcher, 0);
  std::this_thread::sleep_for(std::chrono::seconds(6));
  ::kill(launcher, SIGUSR1);
  const int code = testing::wait_exit(launcher);
  const std::string log = testing::read_file(runs_.str("usr1.log"));
  EXPECT_EQ(code, kExitStopped) << log;
  EXPECT_NE(log.find("stop requested by a signal"), std::string::npos) << log;
  EXPECT_FALSE(read_metrics(run).empty());
}

}  // namespace
}  // namespace pajama
