#include "model/rope.h"

#include "core/error.h"

namespace pajama {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// out (B, H, T, hd) contiguous <- rotate(x (B, T, H, hd)); sin_sign = -1 rotates backwards.
// With x = [x1, x2] (halves of the head): out1 = x1*cos - x2*sin, out2 = x2*cos + x1*sin.
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, double sin_sign,
                     bool input_is_bhtd) {
  const torch::Tensor xt = input_is_bhtd ? x : x.transpose(1, 2);  // (B, H, T, hd) view
  const int64_t half = xt.size(-1) / 2;
  torch::Tensor out = torch::empty(xt.sizes(), xt.options().memory_format(torch::MemoryFormat::Contiguous));
  const torch::Tensor x1 = xt.narrow(-1, 0, half), x2 = xt.narrow(-1, half, half);
  torch::Tensor o1 = out.narrow(-1, 0, half), o2 = out.narrow(-1, half, half);
  torch::mul_out(o1, x1, cos);
  o1.addcmul_(x2, sin, -sin_sign);
  torch::mul_out(o2, x2, cos);
  o2.addcmul_(x1, sin, sin_sign);
  return out;
}

struct RopeFunction : public torch::autograd::Function<RopeFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rotate(x, cos, sin, 1.0, /*input_is_bhtd=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    // The rotation is orthogonal: its adjoint rotates by the opposite angle. The gradient
    // arrives as (B, H, T, hd); hand it back in the input's (B, T, H, hd) shape.
    torch::Tensor g = rotate(grad_outputs[0], saved[0], saved[1], -1.0, /*input_is_bhtd=*/true);
    return {g.transpose(1, 2), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

RopeTables::RopeTables(int64_t head_dim, int64_t max_seq_len, double theta) : max_seq_len_(max_seq_len) {
  PAJAMA_CHECK(head_dim % 2 == 0, "rotary embeddings need an even head_dim, got ", head_dim);
  // inv_freq_i = theta^(-2i/hd), i < hd/2; angle(pos, i) = pos * inv_freq_i. fp64, then fp32.
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor inv_freq =
      torch::pow(theta, -torch::arange(0, head_dim, 2, opts) / static_cast<double>(head_dim));
  const torch::Tensor angles = torch::outer(torch::arange(max_seq_len, opts), inv_freq);
  cos_ = angles.cos().to(torch::kFloat32);
  sin_ = angles.sin().to(torch::kFloat32);
}

std::pair<torch::Tensor, torch::Tensor> RopeTables::get(int64_t seq_len, torch::Device device,
                                                         torch::ScalarType dtype) {
  PAJAMA_CHECK(seq_len <= max_seq_len_, "sequence length ", seq_len, " exceeds max_seq_len ", max_seq_len_);
  const auto key = std::make_tuple(static_cast<int>(device.type()), static_cast<int>(device.index()),
                                   static_cast<int>(dtype));
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    it = cache_.emplace(key, std::make_pair(cos_.to(device, dtype), sin_.to(device, dtype))).first;
  }
  return {it->second.first.narrow(0, 0, seq_len), it->second.second.narrow(0, 0, seq_len)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  PAJAMA_CHECK(x.dim() == 4 && x.size(1) == cos.size(0) && x.size(3) == 2 * cos.size(1),
               "apply_rope: x (B, T, H, head_dim) ", x.sizes(), " does not match the tables ", cos.sizes());
  return RopeFunction::apply(x, cos, sin);
}

}  // namespace pajama
