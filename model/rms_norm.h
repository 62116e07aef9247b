// RMSNorm (Zhang & Sennrich 2019) as LLaMA and Hugging Face compute it:
//   y = weight * (x / sqrt(mean(x^2, -1) + eps)).to(x.dtype)
// The normalisation runs in fp32 whatever the input dtype (bf16 on GPU) and is cast back
// before the weight multiply, exactly like transformers' LlamaRMSNorm. Forward and
// backward are written out by hand so autograd keeps only x and the per-row 1/rms.
#pragma once

#include <utility>

#include <torch/torch.h>

namespace pajama {

// Functional form; x (..., dim), weight (dim).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// The pieces of rms_norm, for fused ops that recompute the normalised output in backward
// instead of keeping it (model/selective_recompute.cpp). Same arithmetic as rms_norm.
// rstd (..., 1) fp32 (fp64 for fp64 x) = 1 / sqrt(mean(x^2) + eps).
torch::Tensor rms_norm_rstd(const torch::Tensor& x, double eps);
// weight * (x * rstd).to(x.dtype): rms_norm's output from x and its rstd.
torch::Tensor rms_norm_apply(const torch::Tensor& x, const torch::Tensor& rstd, const torch::Tensor& weight);
// Gradients (of x, of weight) of rms_norm for the output gradient gy; each only if asked for.
std::pair<torch::Tensor, torch::Tensor> rms_norm_backward(const torch::Tensor& gy, const torch::Tensor& x,
                                                          const torch::Tensor& weight, const torch::Tensor& rstd,
                                                          bool need_grad_x, bool need_grad_weight);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x) { return rms_norm(x, weight, eps_); }

  torch::Tensor weight;  // (dim), initialised to ones
  double eps() const { return eps_; }

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace pajama
