// Mean token cross-entropy of a linear head, computed chunk by chunk so that the
// (tokens x vocab) logits never exist at once: memory is O(chunk_tokens x vocab), not
// O(N x vocab). Llama::loss calls it on the final hidden states and the head matrix.
//
//   loss = chunked_linear_cross_entropy(hidden.view({-1, dim}), head_weight, targets.view(-1),
//                                       /*chunk_tokens=*/1024, /*z_loss=*/0.0);
//
// Numerics follow the unchunked path: each chunk's logits are computed in the parameter
// dtype (bf16 on GPU), the log-softmax in fp32 (fp64 for fp64 inputs).
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace pajama {

// hidden (N, d) and weight (V, d) of one floating dtype, targets (N) int64 in [0, V).
// valid_vocab < V masks the logits of rows [valid_vocab, V) (vocabulary padding): they get
// no probability mass and a zero gradient; targets must then lie in [0, valid_vocab).
// Returns the scalar
//   mean_n(logsumexp(l_n) - l_n[target_n]) + z_loss * mean_n(logsumexp(l_n)^2),  l_n = W h_n,
// in fp32 (fp64 for fp64 inputs); z_loss = 0 is the plain cross-entropy (PaLM's z-loss
// otherwise). Differentiable in hidden and weight; the gradients come back in their dtype.
// When gradients are needed, they are formed chunk by chunk already in forward (see the .cpp),
// so backward is two scalings and no matmul.
torch::Tensor chunked_linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                           const torch::Tensor& targets, int64_t chunk_tokens, double z_loss,
                                           int64_t valid_vocab = -1);

}  // namespace pajama
