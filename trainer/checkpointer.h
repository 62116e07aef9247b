// Crash-safe checkpoints that resume bit-exactly, also on another number of ranks.
// The directory layout and the manifest are in trainer/checkpoint_layout.h.
//
// Saving happens in two halves. At the step boundary save() takes a snapshot of this
// rank's part (its optimizer partition; rank 0 also the model and the small files) into
// host memory: on the CPU a copy, on a GPU pinned buffers filled on a side stream that
// the next parameter update waits for. A background thread then writes, hashes and
// fsyncs the part into step_XXXXXXXX.tmp while training goes on. Every step the ranks
// fold "my part is still being written / failed" into the stop-flag all-reduce they
// already make (end_of_step); once every rank's part is durable, rank 0 commits: the
// manifest, the rename into place, `latest`, pruning. A new save, a stop and the end of
// training wait for the save in flight (flush). Killed at any moment, only committed
// directories count as checkpoints; a stale .tmp is removed by the next run's first
// save. checkpoint.async: false writes in the foreground and commits before save()
// returns (no snapshot memory).
// Resuming: the candidates (newest first under auto) are verified by all ranks
// together, each rank hashing the byte ranges of the files it reads; weights are
// loaded, and the optimizer state is re-sliced by global element ranges, so a
// checkpoint written by N ranks resumes on any M. Collectives that wait on another
// rank's file I/O use checkpoint.io_timeout_s, not parallel.timeout_s.
#pragma once

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/llama.h"
#include "model/safetensors.h"
#include "parallel/communicator.h"
#include "parallel/host_snapshot.h"
#include "parallel/zero_optimizer.h"
#include "trainer/checkpoint_layout.h"
#include "trainer/train_config.h"

namespace pajama {

struct TrainerState {
  int64_t step = 0;              // optimizer steps completed
  int64_t consumed_samples = 0;  // global samples consumed (the loader's state)
  int64_t tokens_seen = 0;
};

// One rank's share of a save: what save() captured at the step boundary and the
// background writer puts on disk. The tensors are host tensors (the snapshot's buffers,
// or the live state when writing in the foreground).
struct SavePart {
  int64_t step = 0;
  int rank = 0;
  std::filesystem::path tmp_dir;
  NamedTensors optimizer;          // "<name>/<kind>" -> owned elements
  nlohmann::json slices;           // [{name, shape, begin, end}]
  NamedTensors weights;            // rank 0 only: the model, and the small files below
  std::string config_json, config_yaml, trainer_state_json;
  int64_t bytes() const;
};

// Test hooks, read from the environment once (not user options):
//   PAJAMA_TEST_CHECKPOINT_DELAY_MS=N     sleep N ms after each file a save writes and
//                                         between the steps of a commit, so that a SIGKILL
//                                         test lands inside them;
//   PAJAMA_TEST_CHECKPOINT_FAIL=RANK:STEP the background write of that rank fails at that step.
struct CheckpointTestHooks {
  int delay_ms = 0;
  int fail_rank = -1;
  int64_t fail_step = -1;
  static CheckpointTestHooks from_env();
};

class Checkpointer {
 public:
  Checkpointer(const CheckpointConfig& cfg, const std::string& run_dir, Communicator& comm,
               const torch::Device& device);
  // Joins a write still in flight without committing it (its .tmp stays incomplete).
  ~Checkpointer();

  bool should_save(int64_t step, int64_t max_steps) const;
  // Collective: every rank calls it at the same step boundary. Waits for the save in
  // flight, then snapshots this rank's part and starts writing it (checkpoint.async),
  // or writes and commits it before returning. Throws CheckpointError on failure
  // (nothing half-written becomes visible).
  void save(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
            const std::string& config_yaml);
  // Collective, once per step: returns true on every rank when any rank asked to stop,
  // and commits the save in flight once every rank's part is durable (one all-reduce
  // of three integers, the one the stop flag needs anyway).
  bool end_of_step(bool stop_requested);
  // Collective: waits until the save in flight (if any) is written and committed.
  void flush();
  // Before the optimizer writes parameters and state: on a GPU the device waits for
  // the snapshot's copies (no host sync). Not collective.
  void before_parameter_update();

  // Collective. Resolves checkpoint.resume (auto/none/PATH), verifies the candidate
  // (incomplete or corrupt checkpoints are reported and skipped for older ones under
  // auto), checks the model shape, loads weights and this rank's optimizer ranges.
  // The model may have a larger vocabulary than the checkpoint (model.vocab_size grown
  // for a merged tokenizer): new rows start by `new_vocab_init` (model/vocab_resize.h,
  // seeded with `seed`) with fresh optimizer state. The optimizer may train another set
  // of parameters than the checkpoint's run (train.trainable changed, e.g. stage 1 ->
  // stage 2): state is restored where the checkpoint has it, started fresh elsewhere
  // (step count 0), and the log says which.
  std::optional<TrainerState> maybe_resume(Llama& model, ZeroOptimizer& optimizer, const std::string& config_yaml,
                                           const std::string& new_vocab_init = "mean", uint64_t seed = 0);

  std::filesystem::path checkpoints_dir() const { return run_dir_ / "checkpoints"; }

 private:
  struct InFlight {
    int64_t step = 0;
    int64_t max_bytes = 0;          // the largest rank's part: the I/O deadline's size
    std::future<void> write;        // the background writer; get() rethrows its error
  };
  SavePart capture(int64_t step, Llama& model, ZeroOptimizer& optimizer, const TrainerState& state,
                   const std::string& config_yaml);
  void remove_stale_tmp_dirs();
  // Collective: every rank's write has ended; agree on the outcome, rank 0 commits.
  void finish_in_flight();
  void commit(int64_t step, const std::filesystem::path& tmp_dir);
  void prune(int64_t newest_step);
  // The deadline for a collective that waits on `bytes` of another rank's file I/O.
  double io_timeout_s(int64_t bytes) const;

  // Every rank learns the problem of the lowest rank that has one ("" when none has).
  std::string agree_on_problem(const std::string& local);

  // Resume (trainer/checkpoint_resume.cpp).
  std::vector<std::filesystem::path> resume_candidates();
  // The first candidate that verifies on every rank, its manifest in `manifest`; empty
  // when there are no checkpoints. A checkpoint.resume PATH that does not verify, or
  // auto when none of the existing ones does, is a CheckpointError.
  std::filesystem::path choose_checkpoint(ZeroOptimizer& optimizer, Manifest& manifest);
  // Checks the shape, loads weights and optimizer ranges and step counts of a verified `dir`.
  TrainerState load_checkpoint(const std::filesystem::path& dir, const Manifest& manifest, Llama& model,
                               ZeroOptimizer& optimizer, const std::string& config_yaml,
                               const std::string& new_vocab_init, uint64_t seed);
  // "" on every rank when the checkpoint is complete and intact, else the same problem.
  std::string verify_together(const std::filesystem::path& dir, const Manifest& m, ZeroOptimizer& optimizer);
  void load_weights(Llama& model, const std::filesystem::path& dir, int64_t saved_vocab,
                    const std::string& new_vocab_init, uint64_t seed);
  // Restores this rank's owned optimizer ranges; returns the names of parameters the
  // checkpoint has no state for (identical on every rank).
  std::vector<std::string> load_optimizer_ranges(ZeroOptimizer& optimizer, const std::filesystem::path& dir,
                                                 const Manifest& m, int64_t saved_vocab);

  CheckpointConfig cfg_;
  std::filesystem::path run_dir_;
  Communicator& comm_;
  torch::Device device_;
  std::unique_ptr<HostSnapshot> snapshot_;  // async only
  std::optional<InFlight> in_flight_;
  bool stale_tmp_removed_ = false;
  CheckpointTestHooks hooks_;  // from the environment; inert unless a test sets them
};

}  // namespace pajama
