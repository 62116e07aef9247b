// Mean token cross-entropy computed in fp32 whatever the logits dtype, with a hand-written
// backward: softmax(logits) - onehot(target), scaled, formed in place in the saved
// log-probabilities. Autograd's log_softmax + nll_loss pair would allocate and fill
// two more (N, vocab) tensors in backward, which costs real time at LLaMA vocab sizes.
#pragma once

#include <torch/torch.h>

namespace pajama {

// logits (N, V) any floating dtype, targets (N) int64 in [0, V) -> fp32 scalar mean loss
// (fp64 for fp64 logits).
// The gradient w.r.t. logits comes back in the logits' dtype.
torch::Tensor cross_entropy_fp32(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace pajama
