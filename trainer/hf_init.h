// Continued pretraining from released weights: `model.init_from: HF_DIR` loads a
// Hugging Face LLaMA directory into the configured model. The shapes must match
// except the vocabulary, which may grow for an expanded tokenizer (as Chinese-LLaMA
// did): the released rows are copied into the model's first rows and the new ones start
// by `new_rows_rule` (model/vocab_resize.h: mean or mean_noise); padding rows are zero.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "model/llama.h"

namespace pajama {

void init_from_hf(Llama& model, const std::filesystem::path& hf_dir, const std::string& new_rows_rule, uint64_t seed);

}  // namespace pajama
