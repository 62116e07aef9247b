// LLaMA's SwiGLU feed-forward block: down(silu(gate(x)) * up(x)), no biases
// (Meta's w2(silu(w1 x) * w3 x)); HF names gate_proj, up_proj, down_proj.
#pragma once

#include <torch/torch.h>

#include "model/linear.h"

namespace pajama {

// silu(gate) * up, elementwise.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden_dim);
  torch::Tensor forward(const torch::Tensor& x) { return down_proj(swiglu(gate_proj(x), up_proj(x))); }

  Linear gate_proj{nullptr};  // (hidden_dim, dim)
  Linear up_proj{nullptr};    // (hidden_dim, dim)
  Linear down_proj{nullptr};  // (dim, hidden_dim)
};
TORCH_MODULE(Mlp);

}  // namespace pajama
