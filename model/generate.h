// Autoregressive decoding with the KV cache (model/kv_cache.h): the prompt in one
// forward, then one token at a time. Greedy (temperature 0) or sampled with
// temperature, top-k and top-p (nucleus) filtering from a seeded generator, as
// transformers' generate(do_sample=...) does.
//
//   GenerateOptions o;  o.max_new_tokens = 64;  o.temperature = 0;   // greedy
//   std::vector<int64_t> ids = generate(model, prompt_ids, o);       // the continuation
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/llama.h"

namespace pajama {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.8;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens (0 = all)
  double top_p = 1.0;        // keep the smallest set whose probability reaches p (1 = all)
  uint64_t seed = 0;
  int64_t eos_id = -1;       // stop after emitting it (-1 = never)
  bool use_cache = true;     // false: recompute the whole sequence every step (tests)
};

// The ids that follow `prompt` (non-empty; prompt + max_new_tokens <= model.max_seq_len).
// on_token, if set, is called with each new id as it is chosen.
std::vector<int64_t> generate(Llama& model, const std::vector<int64_t>& prompt, const GenerateOptions& options,
                              const std::function<void(int64_t)>& on_token = nullptr);

// The next id from one position's logits (vocab) under `options`.
int64_t choose_token(const torch::Tensor& logits, const GenerateOptions& options, at::Generator& gen);

}  // namespace pajama
