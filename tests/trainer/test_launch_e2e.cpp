// Launchers and exit codes: which environments discover_world() accepts (mpirun, srun
// tasks, one process) and refuses (torchrun's variables without MPI, a SLURM batch script
// of a multi-task job); `pajama` command-line errors exit 2; launch/slurm.sbatch requeues
// the job when pajama stops after a checkpoint (75) and only then, run with stand-ins for
// srun and scontrol.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "parallel/world.h"
#include "trainer/trainer.h"
#include "common/support.h"

namespace pajama {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Every variable discover_world() reads, so that a test sees only what it sets.
const char* const kLauncherVars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "SLURM_JOB_ID",         "SLURM_STEP_ID",        "SLURM_STEPID",               "SLURM_PROCID",
    "SLURM_NTASKS",         "SLURM_NPROCS",         "SLURM_LOCALID",              "SLURM_NTASKS_PER_NODE",
    "SLURM_NNODES",         "SLURM_JOB_NUM_NODES",  "PMI_RANK",                   "PMI_SIZE",
    "MPI_LOCALRANKID",      "MPI_LOCALNRANKS",      "RANK",                       "WORLD_SIZE",
    "LOCAL_RANK",           "LOCAL_WORLD_SIZE",     "MASTER_ADDR",                "MASTER_PORT",
    "TORCHELASTIC_RUN_ID"};

// Clears kLauncherVars, sets `vars`, and puts everything back at destruction.
class ScopedLauncherEnv {
 public:
  explicit ScopedLauncherEnv(const std::map<std::string, std::string>& vars) {
    for (const char* name : kLauncherVars) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v != nullptr ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
    for (const auto& [name, value] : vars) ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedLauncherEnv() {
    for (const char* name : kLauncherVars) ::unsetenv(name);
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string discover_error(const std::map<std::string, std::string>& vars) {
  ScopedLauncherEnv env(vars);
  try {
    discover_world();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(DiscoverWorld, TorchrunVariablesWithoutMpiOrSrunAreRefused) {
  const std::string e = discover_error({{"RANK", "1"},
                                        {"WORLD_SIZE", "2"},
                                        {"LOCAL_RANK", "1"},
                                        {"MASTER_ADDR", "127.0.0.1"},
                                        {"MASTER_PORT", "29500"}});
  EXPECT_NE(e.find("torchrun"), std::string::npos) << e;
  EXPECT_NE(e.find("mpirun -np 2 pajama train"), std::string::npos) << e;
  EXPECT_NE(e.find("srun pajama train"), std::string::npos) << e;
  // Started by torchrun (TORCHELASTIC_RUN_ID): the agent's SLURM step variables are
  // inherited by all of its workers and say nothing about this one.
  const std::string elastic = discover_error({{"RANK", "3"},
                                              {"WORLD_SIZE", "8"},
                                              {"LOCAL_RANK", "3"},
                                              {"TORCHELASTIC_RUN_ID", "none"},
                                              {"SLURM_JOB_ID", "7"},
                                              {"SLURM_STEP_ID", "0"},
                                              {"SLURM_PROCID", "0"},
                                              {"SLURM_NTASKS", "1"}});
  EXPECT_NE(elastic.find("TORCHELASTIC_RUN_ID"), std::string::npos) << elastic;
  EXPECT_NE(elastic.find("mpirun -np 8"), std::string::npos) << elastic;
}

TEST(DiscoverWorld, TorchrunVariablesOfOneProcessOrUnderMpirunAreIgnored) {
  {
    ScopedLauncherEnv env({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_RANK", "0"}});
    const World w = discover_world();
    EXPECT_EQ(w.size, 1);
    EXPECT_EQ(w.launcher, "single");
  }
  {
    ScopedLauncherEnv env({{"RANK", "0"},
                           {"WORLD_SIZE", "4"},
                           {"OMPI_COMM_WORLD_RANK", "1"},
                           {"OMPI_COMM_WORLD_SIZE", "2"},
                           {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                           {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
    const World w = discover_world();
    EXPECT_EQ(w.launcher, "openmpi");
    EXPECT_EQ(w.rank, 1);
    EXPECT_EQ(w.size, 2);
  }
  {
    ScopedLauncherEnv env({{"WORLD_SIZE", "not a number"}, {"RANK", "x"}});
    EXPECT_EQ(discover_world().size, 1);
  }
}

// What the batch script of `sbatch --nodes=2 --ntasks-per-node=8` sees: SLURM_PROCID=0,
// the job's SLURM_NTASKS, and no step id.
std::map<std::string, std::string> batch_script_env(int tasks, int nodes) {
  return {{"SLURM_JOB_ID", "4242"},
          {"SLURM_PROCID", "0"},
          {"SLURM_LOCALID", "0"},
          {"SLURM_NTASKS", std::to_string(tasks)},
          {"SLURM_NPROCS", std::to_string(tasks)},
          {"SLURM_NNODES", std::to_string(nodes)},
          {"SLURM_JOB_NUM_NODES", std::to_string(nodes)}};
}

TEST(DiscoverWorld, SlurmBatchScriptOfSeveralTasksIsRefusedAndOfOneRuns) {
  std::string e = discover_error(batch_script_env(16, 2));
  EXPECT_NE(e.find("srun pajama train"), std::string::npos) << e;
  EXPECT_NE(e.find("4242"), std::string::npos) << e;
  EXPECT_NE(e.find("16 task(s) on 2 node(s)"), std::string::npos) << e;
  // Step ids Slurm reserves for the batch (old and new), extern and interactive steps.
  for (const char* step : {"4294967294", "4294967291", "4294967290", "batch", "-2"}) {
    auto vars = batch_script_env(16, 2);
    vars["SLURM_STEP_ID"] = step;
    e = discover_error(vars);
    EXPECT_NE(e.find("srun pajama train"), std::string::npos) << "SLURM_STEP_ID=" << step << ": " << e;
  }
  // An salloc shell of two nodes without a task count.
  e = discover_error({{"SLURM_JOB_ID", "5"}, {"SLURM_JOB_NUM_NODES", "2"}, {"SLURM_NNODES", "2"}});
  EXPECT_NE(e.find("srun pajama train"), std::string::npos) << e;
  // Rank variables without a job or step id are no srun task either.
  e = discover_error({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}});
  EXPECT_NE(e.find("srun pajama train"), std::string::npos) << e;
  {
    ScopedLauncherEnv env(batch_script_env(1, 1));
    const World w = discover_world();
    EXPECT_EQ(w.size, 1);
    EXPECT_EQ(w.rank, 0);
  }
}

TEST(DiscoverWorld, SrunTasksTakeTheirRankFromSlurm) {
  ScopedLauncherEnv env({{"SLURM_JOB_ID", "4242"},
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_PROCID", "11"},
                         {"SLURM_LOCALID", "3"},
                         {"SLURM_NTASKS", "16"},
                         {"SLURM_NNODES", "2"},
                         {"SLURM_NTASKS_PER_NODE", "8"}});
  const World w = discover_world();
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 11);
  EXPECT_EQ(w.size, 16);
  EXPECT_EQ(w.local_rank, 3);
  EXPECT_EQ(w.local_size, 8);
}

// Removes every launcher variable from the environment of a shell command.
std::string clean_env() {
  std::string s = "env";
  for (const char* name : kLauncherVars) s += std::string(" -u ") + name;
  return s + " ";
}

std::string tiny_train(const std::string& run_dir, const std::string& extra = "") {
  return testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml" +
         " --set run.output_dir=" + run_dir + " --set train.threads=1 --set model.n_layers=2 " + extra;
}

// Two processes started as torchrun starts them, without mpirun: both must refuse before
// writing anything, instead of training twice as rank 0 of 1.
TEST(LaunchE2E, TorchrunStyleProcessesRefuseBeforeAnyWork) {
  TempDir dir;
  const std::string run = dir.str("run");
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string vars = "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
                             " WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 ";
    pids.push_back(testing::spawn_command(clean_env() + vars + tiny_train(run, "--set train.max_steps=2"),
                                          dir.str("rank" + std::to_string(rank) + ".log")));
    ASSERT_GT(pids.back(), 0);
  }
  for (int rank = 0; rank < 2; ++rank) {
    const int code = testing::wait_exit(pids[static_cast<size_t>(rank)]);
    const std::string log = testing::read_file(dir.str("rank" + std::to_string(rank) + ".log"));
    EXPECT_EQ(code, 2) << log;
    EXPECT_NE(log.find("does not rendezvous through torchrun"), std::string::npos) << log;
    EXPECT_NE(log.find("mpirun -np 2 pajama train"), std::string::npos) << log;
  }
  EXPECT_FALSE(fs::exists(run)) << "a refused start must not create " << run;
}

TEST(LaunchE2E, TrainInASlurmBatchScriptNeedsSrunUnlessTheJobHasOneTask) {
  TempDir dir;
  const std::string vars =
      "SLURM_JOB_ID=4242 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=16 SLURM_NPROCS=16 SLURM_NNODES=2 "
      "SLURM_JOB_NUM_NODES=2 ";
  auto r = testing::run_command(clean_env() + vars + tiny_train(dir.str("many"), "--set train.max_steps=2"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("srun pajama train"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "many"));

  const std::string one = "SLURM_JOB_ID=4242 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=1 SLURM_NNODES=1 ";
  r = testing::run_command(clean_env() + one +
                           tiny_train(dir.str("one"), "--set train.max_steps=2 --set checkpoint.save_final=false"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::read_metrics(dir.path() / "one").size(), 1u) << r.output;
}

TEST(LaunchE2E, CommandLineErrorsExitTwoAndHelpExitsZero) {
  const std::string exe = testing::pajama_exe();
  struct Case {
    std::string args;
    int code;
    std::string says;
  };
  for (const Case& c : {Case{"train", 2, "--config"}, Case{"nosuchcommand", 2, "nosuchcommand"}, Case{"", 2, ""},
                        Case{"train --config x.yaml --no-such-option", 2, "--no-such-option"},
                        Case{"info --ranks notanumber --config x.yaml", 2, "notanumber"},
                        Case{"convert --checkpoint /nonexistent/run --to-hf /nonexistent/out", 2, "/nonexistent/run"},
                        Case{"generate --checkpoint /nonexistent/run --prompt-ids 1", 2, "/nonexistent/run"},
                        Case{"eval --checkpoint /nonexistent/run --input " + testing::source_dir() + "/CMakeLists.txt", 2,
                             "/nonexistent/run"},
                        Case{"--help", 0, "train"},
                        Case{"train --help", 0, "--config"}, Case{"--version", 0, "pajama"}}) {
    const auto r = testing::run_command(exe + " " + c.args);
    EXPECT_EQ(r.exit_code, c.code) << "pajama " << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << "pajama " << c.args << "\n" << r.output;
  }
}

// launch/slurm.sbatch run by bash as SLURM would run it, with a stand-in srun that runs
// the command as the one task of step 0 (and, when FAKE_SRUN_STOP_WHEN names a file,
// sends it SIGUSR1 once that file has content, as --signal=USR1@120 would), and a
// stand-in scontrol that records its arguments.
class SlurmSbatch : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(bin_.path());
    testing::write_file(bin_.path() / "srun", R"(#!/bin/sh
echo "$@" >> "$FAKE_SLURM_LOG/srun.log"
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
export SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NNODES=1
"$@" &
child=$!
if [ -n "${FAKE_SRUN_STOP_WHEN:-}" ]; then
  i=0
  while [ ! -s "$FAKE_SRUN_STOP_WHEN" ] && kill -0 "$child" 2>/dev/null && [ "$i" -lt 3000 ]; do
    sleep 0.1; i=$((i + 1))
  done
  kill -USR1 "$child" 2>/dev/null
fi
wait "$child"
)");
    testing::write_file(bin_.path() / "scontrol", R"(#!/bin/sh
echo "$@" >> "$FAKE_SLURM_LOG/scontrol.log"
case "$1" in
  show) echo node001 ;;
  requeue) exit "${FAKE_SCONTROL_REQUEUE_RC:-0}" ;;
esac
)");
    fs::permissions(bin_.path() / "srun", fs::perms::owner_all, fs::perm_options::add);
    fs::permissions(bin_.path() / "scontrol", fs::perms::owner_all, fs::perm_options::add);
  }

  // Runs the batch script with `sets` after the config; returns its exit code and output.
  testing::CommandResult sbatch(const std::string& sets, const std::string& vars = "") {
    const std::string cmd = clean_env() + "PATH=" + bin_.str() + ":$PATH FAKE_SLURM_LOG=" + logs_.str() +
                            " PAJAMA_EXE=" + testing::pajama_exe() +
                            " SLURM_JOB_ID=777 SLURM_NNODES=1 SLURM_NTASKS=1 SLURM_JOB_NODELIST=node001"
                            " SLURM_CPUS_PER_TASK=1 " +
                            vars + " bash " + testing::source_dir() + "/launch/slurm.sbatch " +
                            testing::source_dir() + "/configs/tiny.yaml --set train.threads=1 --set model.n_layers=2 " +
                            sets;
    return testing::run_command(cmd);
  }
  std::string scontrol_log() const { return testing::read_file(logs_.path() / "scontrol.log"); }
  std::string srun_log() const { return testing::read_file(logs_.path() / "srun.log"); }

  TempDir bin_;
  TempDir logs_;
  TempDir runs_;
};

constexpr const char* kUntilStopped =
    " --set train.max_steps=100000 --set optim.decay_steps=100000 --set checkpoint.every_steps=0"
    " --set log.every_steps=1";

TEST_F(SlurmSbatch, StopAfterACheckpointRequeuesTheJob) {
  const std::string run = runs_.str("stopped");
  const auto r = sbatch("--set run.output_dir=" + run + kUntilStopped,
                        "FAKE_SRUN_STOP_WHEN=" + run + "/metrics.jsonl");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stop requested by a signal"), std::string::npos) << r.output;
  EXPECT_NE(scontrol_log().find("requeue 777\n"), std::string::npos) << scontrol_log() << r.output;
  EXPECT_TRUE(fs::exists(fs::path(run) / "checkpoints" / "latest")) << r.output;
  // srun got pajama's command line, one task per GPU with its CPUs.
  const std::string srun = srun_log();
  EXPECT_NE(srun.find("--kill-on-bad-exit=1"), std::string::npos) << srun;
  EXPECT_NE(srun.find("--cpus-per-task=1"), std::string::npos) << srun;
  EXPECT_NE(srun.find(testing::pajama_exe() + " train --config " + testing::source_dir() + "/configs/tiny.yaml"),
            std::string::npos)
      << srun;
}

TEST_F(SlurmSbatch, AFailedRequeueLeavesTheStoppedCode) {
  const std::string run = runs_.str("norequeue");
  const auto r = sbatch("--set run.output_dir=" + run + kUntilStopped,
                        "FAKE_SRUN_STOP_WHEN=" + run + "/metrics.jsonl FAKE_SCONTROL_REQUEUE_RC=1");
  EXPECT_EQ(r.exit_code, kExitStopped) << r.output;
  EXPECT_NE(scontrol_log().find("requeue 777\n"), std::string::npos) << scontrol_log();
  EXPECT_NE(r.output.find("resubmit to resume"), std::string::npos) << r.output;
}

TEST_F(SlurmSbatch, FinishedOrFailedRunsAreNotRequeued) {
  auto r = sbatch("--set run.output_dir=" + runs_.str("done") +
                  " --set train.max_steps=2 --set checkpoint.save_final=false");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testing::read_metrics(runs_.path() / "done").size(), 1u) << r.output;
  r = sbatch("--set run.output_dir=" + runs_.str("bad") + " --set no.such_key=1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(scontrol_log().find("requeue"), std::string::npos) << scontrol_log();
  EXPECT_NE(scontrol_log().find("show hostnames node001"), std::string::npos) << scontrol_log();
}

// SLURM opens --output before the script runs, so a directory in it must already exist
// where sbatch is called; and the script sets no variable only PyTorch reads.
TEST(SlurmSbatchScript, OutputNeedsNoDirectoryAndNoPytorchVariables) {
  std::istringstream in(testing::read_file(fs::path(testing::source_dir()) / "launch" / "slurm.sbatch"));
  std::string line;
  int outputs = 0;
  while (std::getline(in, line)) {
    if (line.rfind("#SBATCH --output=", 0) == 0 || line.rfind("#SBATCH -o ", 0) == 0) {
      ++outputs;
      EXPECT_EQ(line.find('/'), std::string::npos) << line;
    }
    if (line.rfind("export ", 0) == 0) {
      for (const char* torch_only : {"NCCL_ASYNC_ERROR_HANDLING", "NCCL_BLOCKING_WAIT", "TORCH_NCCL_"}) {
        EXPECT_EQ(line.find(torch_only), std::string::npos) << line;
      }
    }
  }
  EXPECT_EQ(outputs, 1);
}

}  // namespace
}  // namespace pajama
