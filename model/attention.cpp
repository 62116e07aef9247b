#include "model/attention.h"

#include <optional>

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

torch::Tensor AttentionImpl::forward_cached(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                            torch::Tensor& key_cache, torch::Tensor& value_cache, int64_t pos) {
  const int64_t batch = x.size(0), seq = x.size(1), total = pos + seq;
  PAJAMA_CHECK(total <= key_cache.size(2), "attention: ", total, " positions exceed the cache's ", key_cache.size(2));
  const torch::Tensor q = apply_rope(q_proj(x).view({batch, seq, n_heads_, head_dim_}), cos, sin);
  key_cache.narrow(2, pos, seq).copy_(apply_rope(k_proj(x).view({batch, seq, n_kv_heads_, head_dim_}), cos, sin));
  value_cache.narrow(2, pos, seq).copy_(v_proj(x).view({batch, seq, n_kv_heads_, head_dim_}).transpose(1, 2));
  const torch::Tensor k = key_cache.narrow(2, 0, total), v = value_cache.narrow(2, 0, total);
  // Query i sits at position pos + i and sees keys 0..pos + i. One query needs no mask;
  // a block gets an explicit one (SDPA's is_causal aligns a short query block with the
  // first keys, not the last).
  std::optional<torch::Tensor> mask;
  if (seq > 1) {
    const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
    mask = torch::arange(total, opts).unsqueeze(0) <= (torch::arange(seq, opts) + pos).unsqueeze(1);  // (T, total)
  }
  const torch::Tensor out = torch::scaled_dot_product_attention(q, k, v, mask, 0.0, /*is_causal=*/false, std::nullopt,
                                                                /*enable_gqa=*/n_kv_heads_ != n_heads_);
  return o_proj(out.transpose(1, 2).reshape({batch, seq, n_heads_ * head_dim_}));
}

}  // namespace pajama
