// The memory a training rank needs, planned from the config before anything is
// allocated: `pajama info` prints it, `pajama train` checks it against the GPU before
// the first step. Each term follows what the code allocates (parallel/zero_optimizer,
// model/memory_estimate); tests compare the total with the measured peak on the CPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/train_config.h"

namespace pajama {

struct MemoryTerm {
  std::string name;    // "weights", "gradients", ...
  std::string detail;  // how it is made up, e.g. "bf16, replicated"
  int64_t bytes = 0;
};

struct MemoryPlan {
  int64_t ranks = 1;
  int64_t stage = 2;
  std::string dtype;                 // "fp32" | "bf16": parameters and activations
  std::vector<MemoryTerm> terms;     // weights, gradients, master, optimizer, activations, loss, buckets
  int64_t static_bytes = 0;          // weights + gradients + master + optimizer state (held all step)
  int64_t peak_bytes = 0;            // static + the larger of the backward and optimizer-step transients
  int64_t weights_bytes = 0;         // the replicated parameters alone
};

// dtype: "fp32" or "bf16" (train.dtype resolved by the caller; "auto" is not accepted).
MemoryPlan plan_memory(const TrainConfig& cfg, int64_t ranks, const std::string& dtype);

// "fits: yes" / "fits: no" verdicts with what would make it fit.
struct FitAdvice {
  bool fits = false;
  std::string reason;                 // why not, when nothing short of ZeRO-3/TP helps
  std::vector<std::string> remedies;  // single changes that would fit; empty when it fits
};
FitAdvice advise_fit(const TrainConfig& cfg, int64_t ranks, const std::string& dtype, int64_t device_bytes);

// One checkpoint on disk and the host memory of an asynchronous save's snapshot
// (checkpoint.async), from the same sizes the checkpointer writes: the model in the
// training dtype on rank 0, and per rank its optimizer partition's master weights and
// AdamW moments in fp32, stored without the partition's padding.
struct CheckpointPlan {
  int64_t model_bytes = 0;            // model.safetensors (tensor bytes; headers are KBs)
  int64_t optimizer_bytes = 0;        // all optim_rank*.safetensors together
  int64_t checkpoint_bytes = 0;       // one checkpoint
  int64_t kept = 0;                   // checkpoints on disk at once (checkpoint.keep_last; 0 = all)
  int64_t snapshot_rank0_bytes = 0;   // host memory of rank 0's snapshot (0 without async)
  int64_t snapshot_rank_bytes = 0;    // the same on every other rank
};
CheckpointPlan plan_checkpoint(const TrainConfig& cfg, int64_t ranks, const std::string& dtype);

// Parameters train.trainable selects (all of count_parameters by default).
int64_t trainable_numel(const TrainConfig& cfg);

std::string format_gib(double bytes);  // "12.34 GiB"

}  // namespace pajama
