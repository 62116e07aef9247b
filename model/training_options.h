// How Llama computes its training loss, apart from the model's shape: activation
// checkpointing and the chunked cross-entropy. Owned by model/; trainer/ maps YAML keys
// onto it and hands it to LlamaImpl::set_training_options. None of it changes parameter shapes or
// checkpoints; `none`/`full` give bitwise the same gradients on the CPU.
#pragma once

#include <cstdint>
#include <string>

namespace pajama {

// What each transformer block keeps for backward (model/memory_estimate.h counts it):
enum class ActivationCheckpointing {
  kNone,       // every op saves what its backward needs (fastest, most memory)
  kFull,       // only the block input; the block's forward is recomputed in backward (~ +1 forward)
  kSelective,  // matmul outputs kept; RMSNorm outputs, the SwiGLU product and the o_proj input
               // recomputed in backward (elementwise work only)
};

// "none" | "full" | "selective"; anything else throws ConfigError about the field
// `activation_checkpointing` (at `name`'s address) listing the valid values.
ActivationCheckpointing parse_activation_checkpointing(const std::string& name);
std::string to_string(ActivationCheckpointing mode);

struct TrainingOptions {
  ActivationCheckpointing checkpointing = ActivationCheckpointing::kNone;  // activation checkpointing per block
  int64_t loss_chunk_tokens = 1024;  // tokens per chunk of the LM head + cross-entropy (memory chunk x vocab)
  double z_loss = 0.0;               // weight of mean(logsumexp^2) added to the loss (PaLM); 0 = off

  // Throws ConfigError about the offending field and its value.
  void validate() const;
};

}  // namespace pajama
