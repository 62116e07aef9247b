// Activation memory of one training micro-batch, counted tensor by tensor from the shapes
// (no model is built), for the memory planner and `pajama info`:
//   ActivationMemory m = estimate_activation_memory(cfg, opts, micro_batch, seq_len, 2);
//   m.peak_bytes()  // on top of weights, gradients and optimizer state
// The counts follow what this model's ops save (see the .cpp); bench/model_memory_bench
// compares peak_bytes() with the measured peak RSS growth of a step on the CPU: for 125m in
// fp32 at 1x256, 4x256, 1x1024 (peak at the loss) and 4x1024 with loss chunk 128 (peak in
// backward) every mode is within 3% (none/selective within 1%).
#pragma once

#include <cstdint>

#include "model/llama_config.h"
#include "model/training_options.h"

namespace pajama {

struct ActivationMemory {
  int64_t saved_bytes = 0;          // what forward keeps alive for backward
  int64_t backward_peak_bytes = 0;  // extra live at the worst moment of backward, above saved_bytes
  int64_t loss_bytes = 0;           // the chunked loss's working set at the end of forward, above saved_bytes
  // The step's peak above the weights: everything saved plus the larger of the two transients.
  int64_t peak_bytes() const {
    return saved_bytes + (backward_peak_bytes > loss_bytes ? backward_peak_bytes : loss_bytes);
  }
};

// act_bytes: bytes per activation element in the parameter dtype (4 fp32, 2 bf16). Assumes
// the fused (flash) attention kernel, which keeps O(T) per head, not the T x T matrix.
ActivationMemory estimate_activation_memory(const LlamaConfig& cfg, const TrainingOptions& opts, int64_t micro_batch,
                                            int64_t seq_len, int64_t act_bytes);

}  // namespace pajama
