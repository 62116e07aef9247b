// Continued pretraining from released weights: `model.init_from: HF_DIR` loads a
// Hugging Face LLaMA directory into the configured model. The shapes must match
// except the vocabulary, which may grow for an expanded tokenizer (as Chinese-LLaMA
// did): new embedding and LM-head rows start at the mean of the released rows.
#pragma once

#include <filesystem>

#include "model/llama.h"

namespace pajama {

void init_from_hf(Llama& model, const std::filesystem::path& hf_dir);

}  // namespace pajama
