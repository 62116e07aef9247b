#include "model/selective_recompute.h"

#include "model/rms_norm.h"

namespace pajama {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// grad_weight of y = linear(x, w) for the output gradient gy: gy^T x over all leading dims.
torch::Tensor linear_weight_grad(const torch::Tensor& gy, const torch::Tensor& x) {
  return gy.reshape({-1, gy.size(-1)}).t().mm(x.reshape({-1, x.size(-1)}));
}

struct RMSNormLinearsFunction : public torch::autograd::Function<RMSNormLinearsFunction> {
  // Edges: x = 0, norm_weight = 1, weights[i] = 2 + i. Returned slots add eps at 2.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& norm_weight,
                               double eps, at::TensorList weights) {
    const torch::Tensor rstd = rms_norm_rstd(x, eps);
    const torch::Tensor normed = rms_norm_apply(x, rstd, norm_weight);  // dies with this call
    variable_list outs;
    for (const auto& w : weights) outs.push_back(torch::linear(normed, w));
    variable_list saved = {x, norm_weight, rstd};
    saved.insert(saved.end(), weights.begin(), weights.end());
    ctx->save_for_backward(saved);
    return outs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &norm_weight = saved[1], &rstd = saved[2];
    const size_t num_weights = saved.size() - 3;
    const bool need_x = ctx->needs_input_grad(0), need_norm_weight = ctx->needs_input_grad(1);
    const torch::Tensor normed = rms_norm_apply(x, rstd, norm_weight);  // recomputed
    variable_list result(3 + num_weights);
    torch::Tensor grad_normed;
    for (size_t i = 0; i < num_weights; ++i) {
      const torch::Tensor& gy = grad_outputs[i];
      if (ctx->needs_input_grad(2 + i)) result[3 + i] = linear_weight_grad(gy, normed);
      if (need_x || need_norm_weight) {
        torch::Tensor g = torch::matmul(gy, saved[3 + i]);
        grad_normed = grad_normed.defined() ? grad_normed.add_(g) : g;
      }
    }
    if (grad_normed.defined()) {
      auto [gx, gw] = rms_norm_backward(grad_normed, x, norm_weight, rstd, need_x, need_norm_weight);
      result[0] = gx;
      result[1] = gw;
    }
    return result;
  }
};

struct SwiGLULinearFunction : public torch::autograd::Function<SwiGLULinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate, const torch::Tensor& up,
                               const torch::Tensor& weight) {
    ctx->save_for_backward({gate, up, weight});
    return torch::linear(torch::silu(gate) * up, weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &gate = saved[0], &up = saved[1], &weight = saved[2];
    const torch::Tensor& gy = grad_outputs[0];
    const torch::Tensor silu = torch::silu(gate);  // recomputed, as in forward
    torch::Tensor g_gate, g_up, g_weight;
    if (ctx->needs_input_grad(2)) g_weight = linear_weight_grad(gy, silu * up);
    if (ctx->needs_input_grad(0) || ctx->needs_input_grad(1)) {
      // What autograd does for down(silu(gate) * up): mul's two products, then silu_backward.
      const torch::Tensor g_prod = torch::matmul(gy, weight);
      if (ctx->needs_input_grad(1)) g_up = g_prod * silu;
      if (ctx->needs_input_grad(0)) g_gate = torch::silu_backward(g_prod * up, gate);
    }
    return {g_gate, g_up, g_weight};
  }
};

struct HeadsLinearFunction : public torch::autograd::Function<HeadsLinearFunction> {
  static torch::Tensor merged(const torch::Tensor& heads) {  // (B, H, T, hd) -> (B, T, H*hd) contiguous copy
    return heads.transpose(1, 2).reshape({heads.size(0), heads.size(2), heads.size(1) * heads.size(3)});
  }

  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& heads, const torch::Tensor& weight) {
    ctx->save_for_backward({heads, weight});
    return torch::linear(merged(heads), weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &heads = saved[0], &weight = saved[1];
    const torch::Tensor& gy = grad_outputs[0];
    torch::Tensor g_heads, g_weight;
    if (ctx->needs_input_grad(1)) g_weight = linear_weight_grad(gy, merged(heads));
    if (ctx->needs_input_grad(0)) {
      g_heads = torch::matmul(gy, weight)
                    .view({heads.size(0), heads.size(2), heads.size(1), heads.size(3)})
                    .transpose(1, 2);
    }
    return {g_heads, g_weight};
  }
};

}  // namespace

std::vector<torch::Tensor> rms_norm_linears(const torch::Tensor& x, const torch::Tensor& norm_weight, double eps,
                                            const std::vector<torch::Tensor>& weights) {
  return RMSNormLinearsFunction::apply(x, norm_weight, eps, at::TensorList(weights));
}

torch::Tensor swiglu_linear(const torch::Tensor& gate, const torch::Tensor& up, const torch::Tensor& weight) {
  return SwiGLULinearFunction::apply(gate, up, weight);
}

torch::Tensor heads_linear(const torch::Tensor& heads, const torch::Tensor& weight) {
  return HeadsLinearFunction::apply(heads, weight);
}

}  // namespace pajama
