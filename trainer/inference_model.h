// A trained model for inference (`pajama generate`, `pajama eval`): from a training
// checkpoint (a run directory or one step_X directory, verified first) or from a Hugging
// Face LLaMA directory, on a device in a dtype, with the tokenizer that belongs to it
// (the run's data.tokenizer, or the directory's tokenizer.model).
#pragma once

#include <optional>
#include <string>

#include <torch/torch.h>

#include "model/llama.h"

namespace pajama {

struct InferenceModel {
  Llama model{nullptr};
  std::string tokenizer;  // "" when none is known
  std::string source;     // what was loaded, for the log
};

// Exactly one of checkpoint / hf_dir is non-empty (ConfigError otherwise). dtype: the
// weights' own when unset.
InferenceModel load_inference_model(const std::string& checkpoint, const std::string& hf_dir, torch::Device device,
                                    std::optional<torch::ScalarType> dtype);

// "auto" (CUDA when visible), "cpu" or "cuda"; ConfigError naming `option` otherwise.
torch::Device inference_device(const std::string& name, const std::string& option);
// "auto" (bf16 on CUDA, the weights' dtype on the CPU), "fp32" or "bf16".
std::optional<torch::ScalarType> inference_dtype(const std::string& name, const torch::Device& device,
                                                 const std::string& option);

}  // namespace pajama
