// Weight-only layers with Hugging Face parameter names: Linear (`weight` [out, in],
// y = x W^T, no bias) and Embedding (`weight` [num, dim]). Unlike torch::nn::Linear they
// do no initialisation of their own (that would draw from the global RNG and cost a
// full pass over a 7B model): weights start at zero and LlamaImpl::init_weights fills them.
#pragma once

#include <torch/torch.h>

namespace pajama {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight); }

  torch::Tensor weight;  // (out_features, in_features)
};
TORCH_MODULE(Linear);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim);
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

  torch::Tensor weight;  // (num_embeddings, embedding_dim)
};
TORCH_MODULE(Embedding);

}  // namespace pajama
