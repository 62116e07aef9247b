#include "model/vocab_resize.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace pajama {

bool is_vocab_parameter(const std::string& name) {
  return name == "model.embed_tokens.weight" || name == "lm_head.weight";
}

void check_new_vocab_rule(const std::string& rule) {
  if (rule != "mean" && rule != "mean_noise") {
    throw ConfigError({ConfigField{"new_vocab_init", &rule}},
                      str("new_vocab_init: unknown rule '", rule, "'; use mean or mean_noise"));
  }
}

void init_new_vocab_rows(torch::Tensor weight, int64_t old_rows, int64_t vocab_size, const std::string& rule,
                         uint64_t seed) {
  check_new_vocab_rule(rule);
  PAJAMA_CHECK(weight.dim() == 2 && old_rows > 0 && old_rows <= vocab_size && vocab_size <= weight.size(0),
               "init_new_vocab_rows: rows [", old_rows, ", ", vocab_size, ") do not fit a weight of shape ",
               weight.sizes());
  torch::NoGradGuard no_grad;
  const int64_t added = vocab_size - old_rows, dim = weight.size(1);
  if (added > 0) {
    const torch::Tensor old = weight.narrow(0, 0, old_rows).to(torch::kFloat32);
    torch::Tensor rows = old.mean(0, /*keepdim=*/true).expand({added, dim}).contiguous();
    if (rule == "mean_noise") {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
      torch::Tensor noise = torch::empty({added, dim}, torch::kFloat32);
      noise.normal_(0.0, 0.01 * old.std().item<double>(), gen);
      rows += noise.to(rows.device());
    }
    weight.narrow(0, old_rows, added).copy_(rows);
  }
  if (weight.size(0) > vocab_size) weight.narrow(0, vocab_size, weight.size(0) - vocab_size).zero_();
}

}  // namespace pajama
