#include "model/kv_cache.h"

#include "core/error.h"

namespace pajama {

KvCache::KvCache(const LlamaConfig& cfg, int64_t batch, int64_t cap, torch::Device device, torch::ScalarType dtype)
    : capacity(cap) {
  PAJAMA_CHECK(batch > 0 && cap > 0 && cap <= cfg.max_seq_len, "KvCache: batch ", batch, " and capacity ", cap,
               " must be positive and the capacity at most max_seq_len ", cfg.max_seq_len);
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    keys.push_back(torch::empty({batch, cfg.kv_heads(), cap, cfg.head_dim()}, options));
    values.push_back(torch::empty({batch, cfg.kv_heads(), cap, cfg.head_dim()}, options));
  }
}

}  // namespace pajama
