// Crash-safe checkpoints that resume bit-exactly, also on another number of ranks.
// The directory layout and the manifest are in trainer/checkpoint_layout.h.
//
// Saving: rank 0 creates step_XXXXXXXX.tmp; every rank writes its optimizer partition
// (hashing the bytes as they are written) and rank 0 the model, config.json, config.yaml
// and trainer_state.json; after every rank's files are durable, rank 0 writes the
// manifest, renames the directory into place and updates `latest`.
// Resuming: the candidates (newest first under auto) are verified by all ranks
// together, each rank hashing the byte ranges of the files it reads; weights are
// loaded, and the optimizer state is re-sliced by global element ranges, so a
// checkpoint written by N ranks resumes on any M. Collectives that wait on another
// rank's file I/O use checkpoint.io_timeout_s, not parallel.timeout_s.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "model/llama.h"
#include "parallel/communicator.h"
#include "parallel/zero_optimizer.h"
#include "trainer/checkpoint_layout.h"
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
  // Collective. Resolves checkpoint.resume (auto/none/PATH), verifies the candidate
  // (incomplete or corrupt checkpoints are reported and skipped for older ones under
  // auto), checks the model shape, loads weights and this rank's optimizer ranges.
  std::optional<TrainerState> maybe_resume(Llama& model, ZeroOptimizer& optimizer, const LlamaConfig& shape,
                                           const std::string& config_yaml);

  std::filesystem::path checkpoints_dir() const { return run_dir_ / "checkpoints"; }

 private:
  void commit(int64_t step, const std::filesystem::path& tmp_dir);
  void prune(int64_t newest_step);
  // The deadline for a collective that waits on `bytes` of another rank's file I/O.
  double io_timeout_s(int64_t bytes) const;

  std::vector<std::filesystem::path> resume_candidates();
  // "" on every rank when the checkpoint is complete and intact, else the same problem.
  std::string verify_together(const std::filesystem::path& dir, const Manifest& m, ZeroOptimizer& optimizer);
  void load_weights(Llama& model, const std::filesystem::path& dir);
  void load_optimizer_ranges(ZeroOptimizer& optimizer, const std::filesystem::path& dir, const Manifest& m);

  CheckpointConfig cfg_;
  std::filesystem::path run_dir_;
  Communicator& comm_;
};

}  // namespace pajama
