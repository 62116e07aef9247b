#include "model/mlp.h"

namespace pajama {

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) { return torch::silu(gate) * up; }

MlpImpl::MlpImpl(int64_t dim, int64_t hidden_dim) {
  gate_proj = register_module("gate_proj", Linear(dim, hidden_dim));
  up_proj = register_module("up_proj", Linear(dim, hidden_dim));
  down_proj = register_module("down_proj", Linear(hidden_dim, dim));
}

}  // namespace pajama
