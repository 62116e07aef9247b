// Rotary position embeddings in Hugging Face's rotate_half convention: within each head
// the pairs are (x[i], x[i + head_dim/2]), rotated by angle pos * theta^(-2i/head_dim).
// With this convention our q/k projection weights equal HF's tensors one to one (Meta's
// interleaved-pairs checkpoints need FORMATS.md 5.5's row permutation on conversion).
//
// RopeTables holds cos/sin of shape (max_seq_len, head_dim/2), computed in fp64 and stored
// as fp32; apply_rope casts them to the activation dtype the way transformers does.
#pragma once

#include <map>
#include <tuple>

#include <torch/torch.h>

namespace pajama {

class RopeTables {
 public:
  RopeTables(int64_t head_dim, int64_t max_seq_len, double theta);

  // cos and sin (seq_len, head_dim/2) on `device` in `dtype`, cached per (device, dtype).
  std::pair<torch::Tensor, torch::Tensor> get(int64_t seq_len, torch::Device device, torch::ScalarType dtype);
  int64_t max_seq_len() const { return max_seq_len_; }

 private:
  int64_t max_seq_len_;
  torch::Tensor cos_;  // (max_seq_len, head_dim/2) fp32, CPU
  torch::Tensor sin_;  // (max_seq_len, head_dim/2) fp32, CPU
  std::map<std::tuple<int, int, int>, std::pair<torch::Tensor, torch::Tensor>> cache_;
};

// x (B, T, H, head_dim), any strides; cos/sin (T, head_dim/2) in x's dtype.
// Returns the rotated tensor laid out as (B, H, T, head_dim) contiguous, which is what
// scaled_dot_product_attention wants, so the transpose costs nothing extra.
// Differentiable in x (the backward is the rotation by the opposite angle).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace pajama
