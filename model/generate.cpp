#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>
#include <optional>

#include "core/error.h"
#include "model/kv_cache.h"

namespace pajama {

int64_t choose_token(const torch::Tensor& logits, const GenerateOptions& o, at::Generator& gen) {
  torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32).reshape({-1});
  if (o.temperature <= 0) return l.argmax().item<int64_t>();
  l = l / o.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (o.top_k > 0 && o.top_k < l.size(0)) {
    const double kth = std::get<0>(l.topk(o.top_k)).index({o.top_k - 1}).item<double>();
    l = l.masked_fill(l < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    // The smallest prefix of the sorted distribution whose mass reaches top_p stays.
    const auto [sorted, order] = l.sort(/*dim=*/0, /*descending=*/true);
    const torch::Tensor cumulative = sorted.softmax(0).cumsum(0);
    torch::Tensor drop = (cumulative - sorted.softmax(0)) >= o.top_p;  // mass before this token already enough
    l = l.index_put({order.masked_select(drop)}, torch::full({}, neg_inf));
  }
  const torch::Tensor probs = l.softmax(0);
  return at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
}

std::vector<int64_t> generate(Llama& model, const std::vector<int64_t>& prompt, const GenerateOptions& o,
                              const std::function<void(int64_t)>& on_token) {
  const LlamaConfig& cfg = model->config();
  const auto n = static_cast<int64_t>(prompt.size());
  PAJAMA_CHECK_AS(ConfigError, n > 0, "generate: the prompt is empty");
  PAJAMA_CHECK_AS(ConfigError, o.max_new_tokens >= 0 && n + o.max_new_tokens <= cfg.max_seq_len, "generate: ", n,
                  " prompt tokens + ", o.max_new_tokens, " new tokens exceed the model's max_seq_len ",
                  cfg.max_seq_len);
  PAJAMA_CHECK_AS(ConfigError, o.top_k >= 0 && o.top_p > 0 && o.top_p <= 1 && o.temperature >= 0,
                  "generate: temperature >= 0, top_k >= 0 and 0 < top_p <= 1 are needed");
  for (int64_t id : prompt) {
    PAJAMA_CHECK_AS(ConfigError, id >= 0 && id < cfg.vocab_size, "generate: prompt id ", id,
                    " is outside the vocabulary [0, ", cfg.vocab_size, ")");
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor w = model->parameters().front();  // a copy: parameters() is a temporary
  const auto ids_options = torch::TensorOptions().dtype(torch::kInt64).device(w.device());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  std::vector<int64_t> sequence = prompt, out;
  std::optional<KvCache> cache;
  if (o.use_cache) cache.emplace(cfg, 1, n + std::max<int64_t>(o.max_new_tokens, 1), w.device(), w.scalar_type());
  torch::Tensor next_input = torch::tensor(prompt, ids_options).unsqueeze(0);
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    torch::Tensor logits;
    if (o.use_cache) {
      logits = model->forward_cached(next_input, *cache, /*last_only=*/true);
    } else {
      logits = model->forward(torch::tensor(sequence, ids_options).unsqueeze(0)).narrow(1, -1, 1);
    }
    const int64_t id = choose_token(logits, o, gen);
    out.push_back(id);
    sequence.push_back(id);
    if (on_token) on_token(id);
    if (id == o.eos_id) break;
    next_input = torch::full({1, 1}, id, ids_options);
  }
  return out;
}

}  // namespace pajama
