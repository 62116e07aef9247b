// Fused ops for activation_checkpointing: selective. Each computes what the plain ops
// compute but saves less for backward and recomputes the rest there, elementwise work only
// (the matmul outputs are kept, so no matmul is repeated):
//   rms_norm_linears  keeps x and the per-row rstd, not the normalised x the projections read;
//   swiglu_linear     keeps gate and up, not silu(gate) nor the product down_proj reads;
//   heads_linear      keeps the attention output (B, H, T, hd), which SDPA keeps anyway, not
//                     the (B, T, H*hd) copy that o_proj reads.
// Values equal the plain ops' (same kernels); gradients agree to rounding (the sums over the
// q/k/v branches may associate differently).
#pragma once

#include <vector>

#include <torch/torch.h>

namespace pajama {

// linear(rms_norm(x, norm_weight, eps), w) for each w in weights; x (..., dim).
std::vector<torch::Tensor> rms_norm_linears(const torch::Tensor& x, const torch::Tensor& norm_weight, double eps,
                                            const std::vector<torch::Tensor>& weights);
// linear(silu(gate) * up, weight); gate/up (..., hidden), weight (dim, hidden).
torch::Tensor swiglu_linear(const torch::Tensor& gate, const torch::Tensor& up, const torch::Tensor& weight);
// linear(heads.transpose(1, 2).reshape(B, T, H*hd), weight); heads (B, H, T, hd).
torch::Tensor heads_linear(const torch::Tensor& heads, const torch::Tensor& weight);

}  // namespace pajama
