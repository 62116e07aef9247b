#include "model/linear.h"

namespace pajama {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", torch::zeros({out_features, in_features}));
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim) {
  weight = register_parameter("weight", torch::zeros({num_embeddings, embedding_dim}));
}

}  // namespace pajama
