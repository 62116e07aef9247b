#include "model/cross_entropy.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace pajama {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Why the gradients are computed in forward: the loss is the last op of the graph, so its
// backward runs right after forward. Forming d loss / d logits chunk by chunk while the
// chunk's softmax is at hand and folding it at once into grad_hidden (g W) and grad_weight
// (g^T h) keeps one (chunk, V) buffer alive instead of (N, V), and avoids recomputing the
// chunk logits matmul in backward (a third more head FLOPs). What backward receives is the
// incoming scalar gradient, by which both results are scaled. The price is that the
// gradients are computed even if backward is never called; callers that only want the value
// run under NoGradGuard (the evaluator does), which takes the loss-only path.
struct Sums {
  torch::Tensor loss;  // () compute dtype: sum_n (lse_n - l_n[t_n]) + z_loss * lse_n^2, not yet / N
  torch::Tensor grad_hidden;  // (N, d) hidden dtype, unscaled; undefined unless requested
  torch::Tensor grad_weight;  // (V, d) compute dtype (fp32 accumulator), unscaled; undefined unless requested
};

Sums compute(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
             int64_t chunk_tokens, double z_loss, int64_t valid_vocab, bool need_grad_hidden, bool need_grad_weight) {
  const auto compute_dtype = hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const int64_t n = hidden.size(0), vocab = weight.size(0);
  const double inv_n = 1.0 / static_cast<double>(n);
  Sums out;
  out.loss = torch::zeros({}, hidden.options().dtype(compute_dtype));
  if (need_grad_hidden) out.grad_hidden = torch::empty_like(hidden, torch::MemoryFormat::Contiguous);
  if (need_grad_weight) out.grad_weight = torch::zeros({vocab, weight.size(1)}, weight.options().dtype(compute_dtype));
  for (int64_t start = 0; start < n; start += chunk_tokens) {
    const int64_t rows = std::min(chunk_tokens, n - start);
    const torch::Tensor h = hidden.narrow(0, start, rows);
    const torch::Tensor t = targets.narrow(0, start, rows).unsqueeze(1);  // (rows, 1)
    // Logits in the parameter dtype, like forward(); then fp32. For fp32 inputs `.to` is a
    // no-op and every step below works in place in the one (rows, V) buffer.
    torch::Tensor p = torch::linear(h, weight).to(compute_dtype);
    if (valid_vocab < vocab) p.narrow(1, valid_vocab, vocab - valid_vocab).fill_(-std::numeric_limits<double>::infinity());
    const torch::Tensor target_logit = p.gather(1, t);
    const torch::Tensor max = std::get<0>(p.max(1, /*keepdim=*/true));
    p.sub_(max).exp_();
    const torch::Tensor sum = p.sum(1, /*keepdim=*/true);
    const torch::Tensor lse = sum.log().add_(max);  // (rows, 1)
    torch::Tensor row_loss = lse - target_logit;
    if (z_loss != 0) row_loss.add_(lse.square().mul_(z_loss));
    out.loss.add_(row_loss.sum());
    if (!need_grad_hidden && !need_grad_weight) continue;
    // d/dl [lse - l_t + z lse^2] = softmax (1 + 2 z lse) - onehot(t); then / N.
    p.div_(sum);
    if (z_loss != 0) p.mul_(lse * (2.0 * z_loss) + 1.0);
    p.scatter_add_(1, t, torch::full({rows, 1}, -1.0, p.options()));
    p.mul_(inv_n);
    const torch::Tensor g = p.to(weight.scalar_type());  // (rows, V) parameter dtype, as autograd would pass on
    if (need_grad_hidden) {
      torch::Tensor dst = out.grad_hidden.narrow(0, start, rows);
      torch::mm_out(dst, g, weight);
    }
    if (need_grad_weight) {
      if (g.scalar_type() == compute_dtype) {
        out.grad_weight.addmm_(g.t(), h);
      } else {
        out.grad_weight.add_(torch::mm(g.t(), h));  // bf16 matmul (fp32 accumulate inside), summed in fp32
      }
    }
  }
  return out;
}

struct ChunkedLinearCrossEntropyFunction : public torch::autograd::Function<ChunkedLinearCrossEntropyFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t chunk_tokens, double z_loss, int64_t valid_vocab) {
    Sums s = compute(hidden, weight, targets, chunk_tokens, z_loss, valid_vocab, hidden.requires_grad(),
                     weight.requires_grad());
    // Kept outside save_for_backward: they are ours alone and backward scales them in place.
    ctx->saved_data["grad_hidden"] = s.grad_hidden;
    ctx->saved_data["grad_weight"] = s.grad_weight;
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return s.loss.mul_(1.0 / static_cast<double>(hidden.size(0)));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    torch::Tensor gh = ctx->saved_data["grad_hidden"].toTensor();
    torch::Tensor gw = ctx->saved_data["grad_weight"].toTensor();
    const auto weight_dtype = static_cast<torch::ScalarType>(ctx->saved_data["weight_dtype"].toInt());
    // Released here, not when the graph dies: the (V, d) accumulator must not outlive this call.
    ctx->saved_data.clear();
    PAJAMA_CHECK(gh.defined() || gw.defined(),
                 "chunked_linear_cross_entropy: backward called twice (its gradients are consumed by the first)");
    const torch::Tensor& scale = grad_outputs[0];
    if (gh.defined()) gh.mul_(scale.to(gh.scalar_type()));
    if (gw.defined()) gw = gw.mul_(scale.to(gw.scalar_type())).to(weight_dtype);
    return {gh, gw, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor chunked_linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                           const torch::Tensor& targets, int64_t chunk_tokens, double z_loss,
                                           int64_t valid_vocab) {
  PAJAMA_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1) && hidden.size(0) > 0,
               "chunked_linear_cross_entropy: hidden (N, d) and weight (V, d) expected, got ", hidden.sizes(),
               " and ", weight.sizes());
  PAJAMA_CHECK(hidden.scalar_type() == weight.scalar_type() && hidden.is_floating_point(),
               "chunked_linear_cross_entropy: hidden and weight must share one floating dtype, got ",
               hidden.scalar_type(), " and ", weight.scalar_type());
  PAJAMA_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) && targets.scalar_type() == torch::kInt64,
               "chunked_linear_cross_entropy: int64 targets (N = ", hidden.size(0), ") expected, got ",
               targets.sizes(), " ", targets.scalar_type());
  PAJAMA_CHECK(chunk_tokens > 0, "chunked_linear_cross_entropy: chunk_tokens must be positive, got ", chunk_tokens);
  PAJAMA_CHECK(z_loss >= 0, "chunked_linear_cross_entropy: z_loss must be >= 0, got ", z_loss);
  if (valid_vocab < 0) valid_vocab = weight.size(0);
  PAJAMA_CHECK(valid_vocab > 0 && valid_vocab <= weight.size(0), "chunked_linear_cross_entropy: valid_vocab ",
               valid_vocab, " outside [1, ", weight.size(0), "]");
  const bool records = torch::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  if (records) {
    return ChunkedLinearCrossEntropyFunction::apply(hidden, weight, targets, chunk_tokens, z_loss, valid_vocab);
  }
  torch::NoGradGuard no_grad;
  return compute(hidden, weight, targets, chunk_tokens, z_loss, valid_vocab, false, false)
      .loss.mul_(1.0 / static_cast<double>(hidden.size(0)));
}

}  // namespace pajama
