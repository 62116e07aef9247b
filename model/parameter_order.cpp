#include "model/parameter_order.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace pajama {
namespace {

constexpr std::array<const char*, 9> kLayerOrder = {
    "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",   "mlp.up_proj.weight",      "mlp.down_proj.weight"};

// A sort key: (group, position); group -1 embeddings, layer index, then the head.
std::pair<int64_t, int64_t> forward_key(const std::string& name) {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max() / 2;
  if (name == "model.embed_tokens.weight") return {-1, 0};
  if (name == "model.norm.weight") return {kEnd, 0};
  if (name == "lm_head.weight") return {kEnd, 1};
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) == 0) {
    const size_t dot = name.find('.', prefix.size());
    if (dot != std::string::npos) {
      const std::string rest = name.substr(dot + 1);
      for (size_t i = 0; i < kLayerOrder.size(); ++i) {
        if (rest == kLayerOrder[i]) return {std::stoll(name.substr(prefix.size(), dot - prefix.size())),
                                            static_cast<int64_t>(i)};
      }
    }
  }
  return {kEnd + 1, 0};
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> parameters_in_forward_order(torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters()) out.emplace_back(p.key(), p.value());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return forward_key(a.first) < forward_key(b.first); });
  return out;
}

}  // namespace pajama
