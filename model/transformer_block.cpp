#include "model/transformer_block.h"

#include "model/rope.h"
#include "model/selective_recompute.h"

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

torch::Tensor TransformerBlockImpl::forward_cached(const torch::Tensor& x, const torch::Tensor& cos,
                                                   const torch::Tensor& sin, torch::Tensor& key_cache,
                                                   torch::Tensor& value_cache, int64_t pos) {
  const torch::Tensor h = x + self_attn->forward_cached(input_layernorm(x), cos, sin, key_cache, value_cache, pos);
  return h + mlp(post_attention_layernorm(h));
}

torch::Tensor TransformerBlockImpl::forward_selective(const torch::Tensor& x, const torch::Tensor& cos,
                                                      const torch::Tensor& sin) {
  const int64_t batch = x.size(0), seq = x.size(1);
  const int64_t heads = self_attn->n_heads(), kv_heads = self_attn->n_kv_heads(), hd = self_attn->head_dim();
  // Attention half: as AttentionImpl::forward, with the norm fused into the projections.
  const auto qkv = rms_norm_linears(
      x, input_layernorm->weight, input_layernorm->eps(),
      {self_attn->q_proj->weight, self_attn->k_proj->weight, self_attn->v_proj->weight});
  const torch::Tensor q = apply_rope(qkv[0].view({batch, seq, heads, hd}), cos, sin);
  const torch::Tensor k = apply_rope(qkv[1].view({batch, seq, kv_heads, hd}), cos, sin);
  const torch::Tensor v = qkv[2].view({batch, seq, kv_heads, hd}).transpose(1, 2);
  const torch::Tensor h = x + heads_linear(causal_attention(q, k, v), self_attn->o_proj->weight);
  // MLP half.
  const auto gate_up = rms_norm_linears(h, post_attention_layernorm->weight, post_attention_layernorm->eps(),
                                        {mlp->gate_proj->weight, mlp->up_proj->weight});
  return h + swiglu_linear(gate_up[0], gate_up[1], mlp->down_proj->weight);
}

}  // namespace pajama
