// Activation checkpointing for LibTorch C++ (which has no torch.utils.checkpoint): run a
// function of one tensor without keeping its intermediate activations, and recompute them
// in backward. Llama uses it per transformer block for activation_checkpointing: full.
//
//   h = checkpoint([&](const torch::Tensor& x) { return block->forward(x, cos, sin); }, h, block->parameters());
//
// Contract:
//  - forward runs `fn` under NoGradGuard and keeps only `x` (and `fn` itself);
//  - backward re-runs `fn` with grad enabled on a detached copy of `x` and back-propagates
//    the incoming gradient through it (a reentrant autograd call), returning the gradients
//    of `x` and of every parameter in `params` that requires grad;
//  - those gradients reach the parameters through their ordinary AccumulateGrad nodes, so
//    .grad accumulation and post-accumulate-grad hooks behave exactly as without
//    checkpointing (one call per parameter per backward); frozen parameters get none;
//  - `params` must list every tensor requiring grad that `fn` reads besides `x`, and `fn`
//    must be deterministic (no dropout / RNG: there is none in this model), so that the
//    recomputation reproduces forward bit for bit and so do the gradients.
// Without grad mode (or when nothing requires grad) it is just fn(x).
#pragma once

#include <functional>
#include <vector>

#include <torch/torch.h>

namespace pajama {

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& params);

}  // namespace pajama
