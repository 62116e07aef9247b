#include "model/rms_norm.h"

namespace pajama {
namespace {

// fp32 for fp32/bf16/fp16 activations (like HF); fp64 stays fp64 (gradient checks).
torch::ScalarType compute_dtype(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RMSNormFunction : public torch::autograd::Function<RMSNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, double eps) {
    // rms_norm_rstd + rms_norm_apply, with the fp32 copy of x made once.
    const torch::Tensor xf = x.to(compute_dtype(x));
    // (..., 1) fp32: 1 / sqrt(mean(x^2) + eps)
    const torch::Tensor rstd = torch::rsqrt(xf.square().mean(-1, /*keepdim=*/true).add_(eps));
    torch::Tensor normed = (xf * rstd).to(x.scalar_type());
    ctx->save_for_backward({x, weight, rstd});
    return normed.mul_(weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto [gx, gw] = rms_norm_backward(grad_outputs[0], saved[0], saved[1], saved[2], saved[0].requires_grad(),
                                      saved[1].requires_grad());
    return {gx, gw, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm_rstd(const torch::Tensor& x, double eps) {
  // (..., 1): 1 / sqrt(mean(x^2) + eps) in the compute dtype.
  return torch::rsqrt(x.to(compute_dtype(x)).square().mean(-1, /*keepdim=*/true).add_(eps));
}

torch::Tensor rms_norm_apply(const torch::Tensor& x, const torch::Tensor& rstd, const torch::Tensor& weight) {
  torch::Tensor normed = (x.to(rstd.scalar_type()) * rstd).to(x.scalar_type());
  return normed.mul_(weight);
}

std::pair<torch::Tensor, torch::Tensor> rms_norm_backward(const torch::Tensor& gy, const torch::Tensor& x,
                                                          const torch::Tensor& weight, const torch::Tensor& rstd,
                                                          bool need_grad_x, bool need_grad_weight) {
  // n = x * rstd (recomputed, fp32). y = cast(n) * w.
  const torch::Tensor n = x.to(rstd.scalar_type()) * rstd;
  torch::Tensor gw;
  if (need_grad_weight) {
    // Reduce over every leading dimension, in the parameter dtype like autograd would.
    gw = (gy * n.to(x.scalar_type())).reshape({-1, weight.size(0)}).sum(0).to(weight.scalar_type());
  }
  torch::Tensor gx;
  if (need_grad_x) {
    // dL/dn = gy * w (the cast is the identity for gradients); for n = x * rstd(x):
    // dL/dx = rstd * (gn - n * mean(gn * n)).
    const torch::Tensor gn = (gy * weight).to(rstd.scalar_type());
    const torch::Tensor proj = (gn * n).mean(-1, /*keepdim=*/true);
    gx = gn.sub_(n * proj).mul_(rstd).to(x.scalar_type());
  }
  return {gx, gw};
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return RMSNormFunction::apply(x, weight, eps);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

}  // namespace pajama
