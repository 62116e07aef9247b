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
    const torch::Tensor xf = x.to(compute_dtype(x));
    // (..., 1) fp32: 1 / sqrt(mean(x^2) + eps)
    const torch::Tensor rstd = torch::rsqrt(xf.square().mean(-1, /*keepdim=*/true).add_(eps));
    torch::Tensor normed = (xf * rstd).to(x.scalar_type());
    ctx->save_for_backward({x, weight, rstd});
    return normed.mul_(weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& rstd = saved[2];
    const torch::Tensor& gy = grad_outputs[0];
    // n = x * rstd (recomputed, fp32). y = cast(n) * w.
    const torch::Tensor n = x.to(rstd.scalar_type()) * rstd;
    torch::Tensor gw;
    if (weight.requires_grad()) {
      // Reduce over every leading dimension, in the parameter dtype like autograd would.
      gw = (gy * n.to(x.scalar_type())).reshape({-1, weight.size(0)}).sum(0).to(weight.scalar_type());
    }
    torch::Tensor gx;
    if (x.requires_grad()) {
      // dL/dn = gy * w (the cast is the identity for gradients); for n = x * rstd(x):
      // dL/dx = rstd * (gn - n * mean(gn * n)).
      const torch::Tensor gn = (gy * weight).to(rstd.scalar_type());
      const torch::Tensor proj = (gn * n).mean(-1, /*keepdim=*/true);
      gx = gn.sub_(n * proj).mul_(rstd).to(x.scalar_type());
    }
    return {gx, gw, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return RMSNormFunction::apply(x, weight, eps);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

}  // namespace pajama
