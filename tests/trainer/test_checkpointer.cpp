// Checkpointer failures are typed by what failed: an I/O failure while saving is a
// CheckpointError whichever helper (std::filesystem, core/fs, safetensors) hit it, and
// its message names each path once.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "core/error.h"
#include "model/llama.h"
#include "parallel/adamw.h"
#include "parallel/communicator.h"
#include "parallel/zero_optimizer.h"
#include "common/support.h"
#include "trainer/checkpointer.h"

namespace pajama {
namespace {

using testing::TempDir;
using testing::write_file;

LlamaConfig tiny_config() {
  return {.vocab_size = 32, .dim = 16, .n_layers = 1, .n_heads = 2, .ffn_dim = 24, .max_seq_len = 8};
}

size_t count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// A file where the checkpoints directory should be: every save fails, in the foreground
// and in the background, as a CheckpointError.
TEST(Checkpointer, SaveIntoAnUnusableDirectoryIsACheckpointError) {
  TempDir dir;
  const std::filesystem::path blocked = dir.path() / "checkpoints";
  write_file(blocked, "a file, not a directory\n");
  Llama model(tiny_config());
  NamedParameters params;
  for (const auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  const std::unique_ptr<Communicator> comm = make_communicator(World{}, torch::Device(torch::kCPU), CommConfig{});
  ZeroOptimizer optimizer(params, adamw_factory(AdamWConfig{}), ZeroConfig{}, *comm);
  for (const bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "foreground");
    CheckpointConfig cfg;
    cfg.async = async;
    Checkpointer checkpointer(cfg, dir.path().string(), *comm, torch::Device(torch::kCPU));
    try {
      checkpointer.save(1, model, optimizer, TrainerState{}, "run: {}\n");
      checkpointer.flush();
      ADD_FAILURE() << "saved into " << blocked;
    } catch (const CheckpointError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("saving checkpoint " + (blocked / "step_00000001").string() + ": "), std::string::npos)
          << msg;
      EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;
      EXPECT_EQ(count(msg, (blocked / "step_00000001.tmp").string()), 1u) << msg;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a CheckpointError: " << e.what();
    }
  }
}

// The directory taken away under the background writer: the commit fails as a
// CheckpointError too (rank 0's reads of the rank files, the rename into place).
TEST(Checkpointer, CheckpointsDirectoryRemovedBeforeTheCommitIsACheckpointError) {
  TempDir dir;
  Llama model(tiny_config());
  NamedParameters params;
  for (const auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  const std::unique_ptr<Communicator> comm = make_communicator(World{}, torch::Device(torch::kCPU), CommConfig{});
  ZeroOptimizer optimizer(params, adamw_factory(AdamWConfig{}), ZeroConfig{}, *comm);
  CheckpointConfig cfg;
  cfg.async = true;
  Checkpointer checkpointer(cfg, dir.path().string(), *comm, torch::Device(torch::kCPU));
  checkpointer.save(1, model, optimizer, TrainerState{}, "run: {}\n");
  checkpointer.flush();  // step 1 committed
  EXPECT_TRUE(std::filesystem::exists(checkpointer.checkpoints_dir() / "step_00000001" / "manifest.json"));
  checkpointer.save(2, model, optimizer, TrainerState{}, "run: {}\n");
  // Let the background write finish, then pull its directory away before the commit.
  const auto tmp = checkpointer.checkpoints_dir() / "step_00000002.tmp";
  for (int i = 0; i < 2000 && !std::filesystem::exists(tmp / rank_file_name(0)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::filesystem::remove_all(tmp);
  try {
    checkpointer.flush();
    ADD_FAILURE() << "committed a removed directory";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("saving checkpoint "), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a CheckpointError: " << e.what();
  }
}

}  // namespace
}  // namespace pajama
