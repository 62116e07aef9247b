#include "model/transformer_block.h"

namespace pajama {

TransformerBlockImpl::TransformerBlockImpl(const LlamaConfig& cfg) {
  self_attn = register_module("self_attn", Attention(cfg.dim, cfg.n_heads, cfg.kv_heads()));
  mlp = register_module("mlp", Mlp(cfg.dim, cfg.hidden_ffn_dim()));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.dim, cfg.norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.dim, cfg.norm_eps));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                            const torch::Tensor& sin) {
  const torch::Tensor h = x + self_attn(input_layernorm(x), cos, sin);
  return h + mlp(post_attention_layernorm(h));
}

}  // namespace pajama
