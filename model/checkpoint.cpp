#include "model/checkpoint.h"

#include <utility>

#include "core/error.h"

namespace pajama {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The recomputable function, carried in the autograd context as an IValue capsule
// (saved_data holds IValues only; a capsule needs no class registration).
struct Recompute : torch::CustomClassHolder {
  explicit Recompute(std::function<torch::Tensor(const torch::Tensor&)> f) : fn(std::move(f)) {}
  std::function<torch::Tensor(const torch::Tensor&)> fn;
};

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // Variable inputs, i.e. edge indices: x = 0, params[i] = 1 + i.
  static torch::Tensor forward(AutogradContext* ctx, const c10::intrusive_ptr<Recompute>& recompute,
                               const torch::Tensor& x, at::TensorList params) {
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    // The parameters are saved as well (leaves: no copy) so that backward hands autograd
    // exactly the tensors the recomputation reads.
    variable_list saved = {x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    return recompute->fn(x);  // Function::apply already runs this with grad mode off
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    // saved_data is left in place: a backward with retain_graph may come back for it.
    const variable_list saved = ctx->get_saved_variables();
    const size_t num_params = saved.size() - 1;

    // Only what the outer graph asked for is differentiated; frozen parameters and an input
    // that needs no gradient are left out (their slots stay undefined).
    const bool need_x = ctx->needs_input_grad(0);
    const torch::Tensor x = saved[0].detach().requires_grad_(need_x);
    variable_list inputs;
    std::vector<size_t> slot;  // slot[k]: position in the returned list of inputs[k]'s gradient
    if (need_x) {
      inputs.push_back(x);
      slot.push_back(1);
    }
    for (size_t i = 0; i < num_params; ++i) {
      if (ctx->needs_input_grad(1 + i) && saved[1 + i].requires_grad()) {
        inputs.push_back(saved[1 + i]);
        slot.push_back(2 + i);
      }
    }
    // Returned list: one entry per forward argument (recompute, x, params...).
    variable_list result(2 + num_params);
    if (inputs.empty()) return result;

    torch::Tensor y;
    {
      torch::AutoGradMode enable(true);
      y = recompute->fn(x);
    }
    PAJAMA_CHECK(y.requires_grad(), "checkpoint: the recomputed output does not require grad");
    // grad(), not backward(): the gradients are captured and returned to the outer engine,
    // which delivers them to the parameters' AccumulateGrad nodes (and their hooks) once.
    const variable_list grads = torch::autograd::grad({y}, inputs, {grad_outputs[0]}, /*retain_graph=*/false,
                                                      /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < inputs.size(); ++k) result[slot[k]] = grads[k];
    return result;
  }
};

}  // namespace

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                         const std::vector<torch::Tensor>& params) {
  bool any_grad = x.requires_grad();
  for (const auto& p : params) any_grad = any_grad || p.requires_grad();
  if (!torch::GradMode::is_enabled() || !any_grad) return fn(x);
  return CheckpointFunction::apply(c10::make_intrusive<Recompute>(std::move(fn)), x, at::TensorList(params));
}

}  // namespace pajama
