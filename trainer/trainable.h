// `train.trainable`: which parameters train. `all` (the default), or Hugging Face names
// and shell-style glob patterns (fnmatch: `*` also crosses dots), e.g.
//   train.trainable: [model.embed_tokens.weight, lm_head.weight]      # Chinese-LLaMA stage 1
//   train.trainable: ["model.layers.*.mlp.*", lm_head.weight]
// Frozen parameters keep requires_grad false: no gradient, no optimizer state, no weight
// decay, and ZeRO partitions only the trainable ones.
#pragma once

#include <string>
#include <vector>

namespace pajama {

// Throws ConfigError for an empty list, an empty pattern, or `all` beside other entries.
void validate_trainable(const std::vector<std::string>& patterns);
bool trains_everything(const std::vector<std::string>& patterns);

// The names (in the order given) that match any pattern. Throws ConfigError naming a
// pattern that matches no parameter, with examples of the names.
std::vector<std::string> select_trainable(const std::vector<std::string>& names,
                                          const std::vector<std::string>& patterns);

}  // namespace pajama
