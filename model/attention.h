// Causal multi-head self-attention with grouped-query attention (n_kv_heads divides
// n_heads) and rotary embeddings, as transformers' LlamaAttention: q/k/v/o projections
// without bias, RoPE on q and k, softmax(q k^T / sqrt(head_dim)) v through
// torch::scaled_dot_product_attention (flash/memory-efficient kernels where available).
#pragma once

#include <torch/torch.h>

#include "model/linear.h"

namespace pajama {

// q (B, H, T, hd), k/v (B, KV, T, hd) with H % KV == 0 -> (B, H, T, hd). Causal.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t n_heads, int64_t n_kv_heads);
  // x (B, T, dim); cos/sin (T, head_dim/2) in x's dtype -> (B, T, dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  // Incremental decoding: x holds positions [pos, pos + T) (cos/sin of those positions);
  // their keys and values are written into the cache tensors (B, KV, capacity, hd) at
  // [pos, pos + T) and the T queries attend to positions [0, pos + T), causally.
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               torch::Tensor& key_cache, torch::Tensor& value_cache, int64_t pos);

  Linear q_proj{nullptr};  // (n_heads*head_dim, dim)
  Linear k_proj{nullptr};  // (n_kv_heads*head_dim, dim)
  Linear v_proj{nullptr};  // (n_kv_heads*head_dim, dim)
  Linear o_proj{nullptr};  // (dim, n_heads*head_dim)

  int64_t n_heads() const { return n_heads_; }
  int64_t n_kv_heads() const { return n_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

 private:
  int64_t n_heads_;
  int64_t n_kv_heads_;
  int64_t head_dim_;
};
TORCH_MODULE(Attention);

}  // namespace pajama
