#include "model/cross_entropy.h"

#include "core/error.h"

namespace pajama {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits, const torch::Tensor& targets) {
    // fp32 for fp32/bf16/fp16 logits; fp64 stays fp64 (gradient checks).
    const auto compute = logits.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    const torch::Tensor logp = torch::log_softmax(logits.to(compute), 1);
    const torch::Tensor loss = -logp.gather(1, targets.unsqueeze(1)).mean();
    // Kept outside save_for_backward: backward overwrites it in place (it is ours alone).
    ctx->saved_data["logp"] = logp;
    ctx->saved_data["targets"] = targets;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits.scalar_type());
    return loss;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    torch::Tensor grad = ctx->saved_data["logp"].toTensor();
    const torch::Tensor targets = ctx->saved_data["targets"].toTensor();
    const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["dtype"].toInt());
    ctx->saved_data.clear();
    // d mean(-logp[target]) / d logits = (softmax - onehot) / N.
    const torch::Tensor scale = grad_outputs[0].to(grad.scalar_type()) / static_cast<double>(grad.size(0));
    grad.exp_();
    grad.scatter_add_(1, targets.unsqueeze(1), torch::full({grad.size(0), 1}, -1.0, grad.options()));
    grad.mul_(scale);
    return {grad.to(dtype), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor cross_entropy_fp32(const torch::Tensor& logits, const torch::Tensor& targets) {
  PAJAMA_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                   targets.scalar_type() == torch::kInt64,
               "cross_entropy_fp32: logits (N, V) and int64 targets (N) expected, got ", logits.sizes(), " and ",
               targets.sizes(), " ", targets.scalar_type());
  return CrossEntropyFunction::apply(logits, targets);
}

}  // namespace pajama
