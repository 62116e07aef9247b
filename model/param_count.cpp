#include "model/param_count.h"

namespace pajama {

int64_t ParameterShape::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<ParameterShape> parameter_shapes(const LlamaConfig& cfg) {
  const int64_t dim = cfg.dim, q = cfg.n_heads * cfg.head_dim(), kv = cfg.kv_heads() * cfg.head_dim();
  const int64_t ffn = cfg.hidden_ffn_dim(), vocab = cfg.padded_vocab_size();
  std::vector<ParameterShape> out = {{"model.embed_tokens.weight", {vocab, dim}}};
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    out.push_back({l + "self_attn.q_proj.weight", {q, dim}});
    out.push_back({l + "self_attn.k_proj.weight", {kv, dim}});
    out.push_back({l + "self_attn.v_proj.weight", {kv, dim}});
    out.push_back({l + "self_attn.o_proj.weight", {dim, q}});
    out.push_back({l + "mlp.gate_proj.weight", {ffn, dim}});
    out.push_back({l + "mlp.up_proj.weight", {ffn, dim}});
    out.push_back({l + "mlp.down_proj.weight", {dim, ffn}});
    out.push_back({l + "input_layernorm.weight", {dim}});
    out.push_back({l + "post_attention_layernorm.weight", {dim}});
  }
  out.push_back({"model.norm.weight", {dim}});
  if (!cfg.tie_embeddings) out.push_back({"lm_head.weight", {vocab, dim}});
  return out;
}

int64_t count_parameters(const LlamaConfig& cfg) {
  const int64_t dim = cfg.dim, hd = cfg.head_dim();
  const int64_t attn = dim * cfg.n_heads * hd          // q
                       + 2 * dim * cfg.kv_heads() * hd  // k, v
                       + cfg.n_heads * hd * dim;        // o
  const int64_t mlp = 3 * dim * cfg.hidden_ffn_dim();
  const int64_t block = attn + mlp + 2 * dim;  // + two RMSNorm gains
  const int64_t head = cfg.tie_embeddings ? 0 : cfg.padded_vocab_size() * dim;
  return count_embedding_parameters(cfg) + cfg.n_layers * block + dim + head;
}

int64_t count_embedding_parameters(const LlamaConfig& cfg) { return cfg.padded_vocab_size() * cfg.dim; }

double flops_per_token(const LlamaConfig& cfg, int64_t seq_len) {
  const auto non_embedding = static_cast<double>(count_parameters(cfg) - count_embedding_parameters(cfg));
  return 6.0 * non_embedding + 12.0 * static_cast<double>(cfg.n_layers * cfg.dim * seq_len);
}

}  // namespace pajama
