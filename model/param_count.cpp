#include "model/param_count.h"

namespace pajama {

int64_t count_parameters(const LlamaConfig& cfg) {
  const int64_t dim = cfg.dim, hd = cfg.head_dim();
  const int64_t attn = dim * cfg.n_heads * hd          // q
                       + 2 * dim * cfg.kv_heads() * hd  // k, v
                       + cfg.n_heads * hd * dim;        // o
  const int64_t mlp = 3 * dim * cfg.hidden_ffn_dim();
  const int64_t block = attn + mlp + 2 * dim;  // + two RMSNorm gains
  const int64_t head = cfg.tie_embeddings ? 0 : cfg.vocab_size * dim;
  return count_embedding_parameters(cfg) + cfg.n_layers * block + dim + head;
}

int64_t count_embedding_parameters(const LlamaConfig& cfg) { return cfg.vocab_size * cfg.dim; }

double flops_per_token(const LlamaConfig& cfg, int64_t seq_len) {
  const auto non_embedding = static_cast<double>(count_parameters(cfg) - count_embedding_parameters(cfg));
  return 6.0 * non_embedding + 12.0 * static_cast<double>(cfg.n_layers * cfg.dim * seq_len);
}

}  // namespace pajama
