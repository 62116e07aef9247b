// The key/value cache of incremental decoding (`pajama generate`): per layer, keys and
// values of every position so far, preallocated for `capacity` positions, so each new
// token costs one query block against the cache instead of the whole prefix again.
//
//   KvCache cache(cfg, batch, capacity, device, dtype);
//   logits = model->forward_cached(prompt, cache);      // (B, T, vocab), cache.length = T
//   logits = model->forward_cached(next_token, cache);  // (B, 1, vocab), cache.length = T + 1
// The training path (forward, loss) never uses it.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "model/llama_config.h"

namespace pajama {

struct KvCache {
  KvCache(const LlamaConfig& cfg, int64_t batch, int64_t capacity, torch::Device device, torch::ScalarType dtype);
  std::vector<torch::Tensor> keys;    // per layer (B, KV, capacity, head_dim), RoPE applied
  std::vector<torch::Tensor> values;  // per layer (B, KV, capacity, head_dim)
  int64_t length = 0;                 // positions filled
  int64_t capacity = 0;
};

}  // namespace pajama
