// Llama's parameters in the order forward first uses them:
//   embed_tokens, then per layer input_layernorm, q, k, v, o, post_attention_layernorm,
//   gate, up, down, then the final norm and lm_head.
// Backward produces gradients in about the reverse of this order, which is what lets
// the ZeRO-2 optimizer reduce each gradient bucket as soon as it fills. (Checkpoints and
// Hugging Face files keep named_parameters() order; this order is never persisted.)
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace pajama {

// Names unknown to the LLaMA layout keep their relative order after the known ones.
std::vector<std::pair<std::string, torch::Tensor>> parameters_in_forward_order(torch::nn::Module& model);

}  // namespace pajama
