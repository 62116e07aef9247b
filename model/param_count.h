// Parameter and FLOP accounting from the config alone (no model is built), used by
// `pajama info`, the MFU in the training log, and the preset tests:
//   count_parameters(llama_preset("llama-7b")) == 6'738'415'616
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/llama_config.h"

namespace pajama {

// Every parameter's Hugging Face name and shape, in named_parameters() order, as
// Llama(cfg) would hold them (vocabulary rows padded), without building the model.
struct ParameterShape {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const;
};
std::vector<ParameterShape> parameter_shapes(const LlamaConfig& cfg);

// Every parameter (embedding, blocks, final norm, head unless tied).
int64_t count_parameters(const LlamaConfig& cfg);
// The token embedding alone: padded_vocab_size * dim.
int64_t count_embedding_parameters(const LlamaConfig& cfg);
// Training FLOPs per token (forward + backward):
//   6 * (parameters - vocab_size*dim) + 12 * n_layers * dim * seq_len.
double flops_per_token(const LlamaConfig& cfg, int64_t seq_len);

}  // namespace pajama
