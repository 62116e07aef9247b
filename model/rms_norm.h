// RMSNorm (Zhang & Sennrich 2019) as LLaMA and Hugging Face compute it:
//   y = weight * (x / sqrt(mean(x^2, -1) + eps)).to(x.dtype)
// The normalisation runs in fp32 whatever the input dtype (bf16 on GPU) and is cast back
// before the weight multiply, exactly like transformers' LlamaRMSNorm. Forward and
// backward are written out by hand so autograd keeps only x and the per-row 1/rms.
#pragma once

#include <torch/torch.h>

namespace pajama {

// Functional form; x (..., dim), weight (dim).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x) { return rms_norm(x, weight, eps_); }

  torch::Tensor weight;  // (dim), initialised to ones

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace pajama
