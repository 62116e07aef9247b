// One pre-norm LLaMA decoder layer:
//   h = x + attn(input_layernorm(x));  out = h + mlp(post_attention_layernorm(h)).
// Submodules are registered in HF LlamaDecoderLayer's order (self_attn, mlp,
// input_layernorm, post_attention_layernorm), which fixes the parameter name order.
#pragma once

#include <torch/torch.h>

#include "model/attention.h"
#include "model/llama_config.h"
#include "model/mlp.h"
#include "model/rms_norm.h"

namespace pajama {

class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const LlamaConfig& cfg);
  // x (B, T, dim); cos/sin (T, head_dim/2) in x's dtype
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  // The same function for activation_checkpointing: selective, through the fused ops of
  // model/selective_recompute.h: per token it keeps x, q, k, v, the attention output and its
  // logsumexp, h, gate and up, and recomputes both RMSNorm outputs, o_proj's input copy,
  // silu(gate) and the SwiGLU product in backward (elementwise work, no matmul).
  torch::Tensor forward_selective(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  // Incremental decoding (AttentionImpl::forward_cached): x holds positions [pos, pos + T).
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               torch::Tensor& key_cache, torch::Tensor& value_cache, int64_t pos);

  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr};
  RMSNorm post_attention_layernorm{nullptr};
};
TORCH_MODULE(TransformerBlock);

}  // namespace pajama
