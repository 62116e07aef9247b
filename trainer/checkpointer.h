// Crash-safe checkpoints that resume bit-exactly, also on another number of ranks.
//
// Layout of <run dir>/checkpoints/step_00000120/:
//   config.yaml            resolved config of the run that wrote it
//   model.safetensors      model weights, Hugging Face names (one copy, rank 0)
//   optim_rank00003.safetensors   rank 3's optimizer partition, stored per parameter
//                          name: "<name>/master", "<name>/exp_avg", "<name>/exp_avg_sq"
//                          hold elements [begin, end) of the flattened parameter
//   rank00003.json         that rank's slices (name, global shape, begin, end) and the
//                          sha256 of its safetensors file
//   trainer_state.json     step, consumed samples, tokens seen, optimizer step count
//   manifest.json          written last: format version, world size, every file's size
//                          and sha256
// The directory is written as step_XXXXXXXX.tmp; after a barrier rank 0 writes the
// manifest, renames the directory into place and then updates the `latest` file.
// Loading re-slices the optimizer state by global element ranges, so a checkpoint
// written by N ranks resumes on any M, each rank reading only the ranges it owns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "model/llama.h"
#include "parallel/communicator.h"
#include "parallel/zero_optimizer.h"
#include "trainer/train_config.h"

namespace pajama {

struct TrainerState {
  int64_t step = 0;              // optimizer steps completed
  int64_t consumed_samples = 0;  // global samples consumed (the loader's state)
  int64_t tokens_seen = 0;
};

class Checkpointer {
 public:
  Checkpointer(const CheckpointConfig& cfg, const std::string& run_dir, Communicator& comm);

  bool should_save(int64_t step, int64_t max_steps) const;
  // Collective: every rank calls it. Throws CheckpointError on failure (nothing
  // half-written becomes visible).
  void save(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
            const std::string& config_yaml);
  // Collective. Resolves checkpoint.resume (auto/none/PATH), verifies the manifest
  // (incomplete or corrupt checkpoints are reported and skipped for older ones under
  // auto), checks the model shape, loads weights and this rank's optimizer ranges.
  std::optional<TrainerState> maybe_resume(Llama& model, ZeroOptimizer& optimizer, const LlamaConfig& shape,
                                           const std::string& config_yaml);

  std::filesystem::path checkpoints_dir() const { return run_dir_ / "checkpoints"; }

 private:
  void prune(int64_t newest_step);

  CheckpointConfig cfg_;
  std::filesystem::path run_dir_;
  Communicator& comm_;
};

// Verifies a checkpoint directory against its manifest (sizes and sha256 of every
// file). Returns "" when complete and intact, else what is wrong.
std::string verify_checkpoint(const std::filesystem::path& dir);
std::string checkpoint_dir_name(int64_t step);  // "step_00000120"

}  // namespace pajama
