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

std::string format_gib(double bytes);  // "12.34 GiB"

}  // namespace pajama
