#include "model/llama_config.h"

#include <map>

#include "core/error.h"

namespace pajama {
namespace {

LlamaConfig make(int64_t vocab, int64_t dim, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn,
                 double eps, int64_t max_seq) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.ffn_dim = ffn;
  c.norm_eps = eps;
  c.max_seq_len = max_seq;
  return c;
}

const std::map<std::string, LlamaConfig>& presets() {
  // LLaMA-1 (arXiv 2302.13971 Table 2): ffn from LLaMA's rule (multiple_of 256), eps 1e-6.
  // LLaMA-2 7B: same shape, 4096 context, eps 1e-5. Baichuan-7B: 64000 vocab, 4096 context.
  static const std::map<std::string, LlamaConfig> table = {
      {"tiny", make(4096, 128, 4, 4, 2, 352, 1e-5, 256)},
      {"125m", make(32000, 768, 12, 12, 0, 2048, 1e-5, 2048)},
      {"350m", make(32000, 1024, 24, 16, 0, 2816, 1e-5, 2048)},
      {"1b", make(32000, 2048, 18, 16, 0, 5632, 1e-5, 2048)},
      {"llama-7b", make(32000, 4096, 32, 32, 0, 0, 1e-6, 2048)},
      {"llama-13b", make(32000, 5120, 40, 40, 0, 0, 1e-6, 2048)},
      {"llama-33b", make(32000, 6656, 60, 52, 0, 0, 1e-6, 2048)},
      {"llama-65b", make(32000, 8192, 80, 64, 0, 0, 1e-6, 2048)},
      {"llama2-7b", make(32000, 4096, 32, 32, 0, 11008, 1e-5, 4096)},
      {"baichuan-7b", make(64000, 4096, 32, 32, 0, 11008, 1e-6, 4096)},
  };
  return table;
}

}  // namespace

int64_t LlamaConfig::hidden_ffn_dim() const {
  if (ffn_dim > 0) return ffn_dim;
  const auto base = static_cast<int64_t>(8 * dim / 3);
  const auto scaled = static_cast<int64_t>(ffn_dim_multiplier * static_cast<double>(base));
  return multiple_of * ((scaled + multiple_of - 1) / multiple_of);
}

void LlamaConfig::validate() const {
  PAJAMA_CHECK_FIELD(vocab_size > 0, vocab_size, "vocab_size must be positive, got ", vocab_size);
  PAJAMA_CHECK_FIELD(vocab_multiple_of > 0, vocab_multiple_of,
                     "vocab_multiple_of must be positive (1 = no padding), got ", vocab_multiple_of);
  PAJAMA_CHECK_FIELD(dim > 0, dim, "dim must be positive, got ", dim);
  PAJAMA_CHECK_FIELD(n_layers > 0, n_layers, "n_layers must be positive, got ", n_layers);
  PAJAMA_CHECK_FIELD(n_heads > 0, n_heads, "n_heads must be positive, got ", n_heads);
  if (dim % n_heads != 0) {
    throw ConfigError({PAJAMA_FIELD(dim), PAJAMA_FIELD(n_heads)},
                      str("dim ", dim, " is not divisible by n_heads ", n_heads));
  }
  if (head_dim() % 2 != 0) {
    throw ConfigError({PAJAMA_FIELD(dim), PAJAMA_FIELD(n_heads)},
                      str("dim / n_heads = ", head_dim(), " must be even for rotary embeddings"));
  }
  PAJAMA_CHECK_FIELD(n_kv_heads >= 0, n_kv_heads, "n_kv_heads must be >= 0 (0 = n_heads), got ", n_kv_heads);
  if (n_heads % kv_heads() != 0) {
    throw ConfigError({PAJAMA_FIELD(n_kv_heads), PAJAMA_FIELD(n_heads)},
                      str("n_heads ", n_heads, " is not divisible by n_kv_heads ", kv_heads()));
  }
  PAJAMA_CHECK_FIELD(ffn_dim >= 0, ffn_dim, "ffn_dim must be >= 0 (0 = LLaMA's rule), got ", ffn_dim);
  PAJAMA_CHECK_FIELD(multiple_of > 0, multiple_of, "multiple_of must be positive, got ", multiple_of);
  PAJAMA_CHECK_FIELD(ffn_dim_multiplier > 0, ffn_dim_multiplier, "ffn_dim_multiplier must be positive, got ",
                     ffn_dim_multiplier);
  PAJAMA_CHECK_FIELD(norm_eps > 0, norm_eps, "norm_eps must be positive, got ", norm_eps);
  PAJAMA_CHECK_FIELD(rope_theta > 0, rope_theta, "rope_theta must be positive, got ", rope_theta);
  PAJAMA_CHECK_FIELD(max_seq_len > 0, max_seq_len, "max_seq_len must be positive, got ", max_seq_len);
  PAJAMA_CHECK_FIELD(init_std > 0, init_std, "init_std must be positive, got ", init_std);
}

std::string shape_differences(const LlamaConfig& a, const LlamaConfig& b, const std::string& a_label,
                              const std::string& b_label, const std::string& key_prefix, bool include_vocab) {
  std::string diff;
  auto cmp = [&](const char* key, auto x, auto y) {
    if (x != y) diff += str("\n  ", key_prefix, key, ": ", a_label, " ", x, ", ", b_label, " ", y);
  };
  if (include_vocab) {
    cmp("vocab_size", a.vocab_size, b.vocab_size);
    cmp("vocab_multiple_of", a.vocab_multiple_of, b.vocab_multiple_of);
  }
  cmp("dim", a.dim, b.dim);
  cmp("n_layers", a.n_layers, b.n_layers);
  cmp("n_heads", a.n_heads, b.n_heads);
  cmp("n_kv_heads", a.kv_heads(), b.kv_heads());
  cmp("ffn_dim", a.hidden_ffn_dim(), b.hidden_ffn_dim());
  cmp("tie_embeddings", a.tie_embeddings, b.tie_embeddings);
  return diff;
}

LlamaConfig llama_preset(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    PAJAMA_FAIL_AS(ConfigError, "unknown preset '", name, "'; valid presets: ", join(llama_preset_names()));
  }
  return it->second;
}

std::vector<std::string> llama_preset_names() {
  std::vector<std::string> names;
  for (const auto& [n, c] : presets()) names.push_back(n);
  return names;
}

}  // namespace pajama
