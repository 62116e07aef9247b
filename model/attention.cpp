#include "model/attention.h"

#include "core/error.h"
#include "model/rope.h"

namespace pajama {

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t n_heads = q.size(1), n_kv_heads = k.size(1);
  PAJAMA_CHECK(n_heads % n_kv_heads == 0, "attention: ", n_heads, " query heads are not a multiple of ", n_kv_heads,
               " key/value heads");
  // enable_gqa lets each group of n_heads/n_kv_heads query heads read its kv head in place
  // (HF's repeat_kv without the copy); the fused CPU and CUDA flash kernels take it.
  return torch::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true,
                                             /*scale=*/std::nullopt, /*enable_gqa=*/n_kv_heads != n_heads);
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t n_heads, int64_t n_kv_heads)
    : n_heads_(n_heads), n_kv_heads_(n_kv_heads), head_dim_(dim / n_heads) {
  // Registration order fixes named_parameters() order: q, k, v, o like HF.
  q_proj = register_module("q_proj", Linear(dim, n_heads * head_dim_));
  k_proj = register_module("k_proj", Linear(dim, n_kv_heads * head_dim_));
  v_proj = register_module("v_proj", Linear(dim, n_kv_heads * head_dim_));
  o_proj = register_module("o_proj", Linear(n_heads * head_dim_, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t batch = x.size(0), seq = x.size(1);
  // RoPE reads (B, T, H, hd) views of the projections and writes (B, H, T, hd) directly.
  const torch::Tensor q = apply_rope(q_proj(x).view({batch, seq, n_heads_, head_dim_}), cos, sin);
  const torch::Tensor k = apply_rope(k_proj(x).view({batch, seq, n_kv_heads_, head_dim_}), cos, sin);
  const torch::Tensor v = v_proj(x).view({batch, seq, n_kv_heads_, head_dim_}).transpose(1, 2);
  const torch::Tensor out = causal_attention(q, k, v);  // (B, H, T, hd)
  return o_proj(out.transpose(1, 2).reshape({batch, seq, n_heads_ * head_dim_}));
}

}  // namespace pajama
