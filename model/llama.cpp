#include "model/llama.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/cross_entropy.h"

namespace pajama {
namespace {

const LlamaConfig& validated(const LlamaConfig& cfg) {
  cfg.validate();
  return cfg;
}

}  // namespace

LlamaBodyImpl::LlamaBodyImpl(const LlamaConfig& cfg) {
  embed_tokens = register_module("embed_tokens", Embedding(cfg.padded_vocab_size(), cfg.dim));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layers; ++i) layers->push_back(TransformerBlock(cfg));
  norm = register_module("norm", RMSNorm(cfg.dim, cfg.norm_eps));
}

LlamaImpl::LlamaImpl(const LlamaConfig& cfg)
    : cfg_(validated(cfg)), rope_(cfg.head_dim(), cfg.max_seq_len, cfg.rope_theta) {
  model = register_module("model", LlamaBody(cfg_));
  if (!cfg_.tie_embeddings) lm_head = register_module("lm_head", Linear(cfg_.dim, cfg_.padded_vocab_size()));
}

torch::Tensor LlamaImpl::head_weight() const {
  return cfg_.tie_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

torch::Tensor LlamaImpl::hidden_states(const torch::Tensor& tokens) {
  PAJAMA_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kInt64, "Llama: tokens must be (B, T) int64, got ",
               tokens.sizes(), " ", tokens.scalar_type());
  PAJAMA_CHECK(tokens.size(1) <= cfg_.max_seq_len, "Llama: sequence length ", tokens.size(1),
               " exceeds max_seq_len ", cfg_.max_seq_len);
  torch::Tensor h = model->embed_tokens(tokens);
  const auto [cos, sin] = rope_.get(tokens.size(1), h.device(), h.scalar_type());
  // Checkpointing only matters when a graph is recorded; eval and inference run the plain path.
  const auto mode = torch::GradMode::is_enabled() ? training_.checkpointing : ActivationCheckpointing::kNone;
  for (const auto& layer : *model->layers) {
    TransformerBlockImpl* block = layer->as<TransformerBlock>();
    switch (mode) {
      case ActivationCheckpointing::kNone:
        h = block->forward(h, cos, sin);
        break;
      case ActivationCheckpointing::kFull:
        // cos/sin are captured by value: the recomputation in backward needs them.
        h = checkpoint([block, cos, sin](const torch::Tensor& x) { return block->forward(x, cos, sin); }, h,
                       block->parameters());
        break;
      case ActivationCheckpointing::kSelective:
        h = block->forward_selective(h, cos, sin);
        break;
    }
  }
  return model->norm(h);
}

torch::Tensor LlamaImpl::forward(const torch::Tensor& tokens) {
  const torch::Tensor logits = torch::linear(hidden_states(tokens), head_weight());
  return cfg_.padded_vocab_size() == cfg_.vocab_size ? logits : logits.narrow(-1, 0, cfg_.vocab_size).contiguous();
}

torch::Tensor LlamaImpl::forward_cached(const torch::Tensor& tokens, KvCache& cache, bool last_only) {
  PAJAMA_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kInt64, "Llama: tokens must be (B, T) int64, got ",
               tokens.sizes(), " ", tokens.scalar_type());
  const int64_t pos = cache.length, seq = tokens.size(1);
  PAJAMA_CHECK(static_cast<int64_t>(cache.keys.size()) == cfg_.n_layers && pos + seq <= cache.capacity,
               "Llama::forward_cached: ", pos + seq, " positions exceed the cache's capacity ", cache.capacity);
  torch::NoGradGuard no_grad;
  torch::Tensor h = model->embed_tokens(tokens);
  const auto [cos_all, sin_all] = rope_.get(pos + seq, h.device(), h.scalar_type());
  const torch::Tensor cos = cos_all.narrow(0, pos, seq), sin = sin_all.narrow(0, pos, seq);
  for (size_t l = 0; l < model->layers->size(); ++l) {
    h = model->layers[l]->as<TransformerBlock>()->forward_cached(h, cos, sin, cache.keys[l], cache.values[l], pos);
  }
  cache.length = pos + seq;
  h = model->norm(h);
  if (last_only) h = h.narrow(1, seq - 1, 1);
  const torch::Tensor logits = torch::linear(h, head_weight());
  return cfg_.padded_vocab_size() == cfg_.vocab_size ? logits : logits.narrow(-1, 0, cfg_.vocab_size).contiguous();
}

torch::Tensor LlamaImpl::loss(const torch::Tensor& tokens, const torch::Tensor& targets) {
  PAJAMA_CHECK(targets.sizes() == tokens.sizes() && targets.scalar_type() == torch::kInt64,
               "Llama::loss: targets must be int64 shaped like tokens ", tokens.sizes(), ", got ", targets.sizes(),
               " ", targets.scalar_type());
  const torch::Tensor hidden = hidden_states(tokens);
  return chunked_linear_cross_entropy(hidden.reshape({-1, cfg_.dim}), head_weight(), targets.reshape({-1}),
                                      training_.loss_chunk_tokens, training_.z_loss, cfg_.vocab_size);
}

void LlamaImpl::set_training_options(const TrainingOptions& options) {
  options.validate();
  training_ = options;
}

void LlamaImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : named_parameters()) {
    torch::Tensor& w = p.value();
    if (w.dim() == 1) {
      w.fill_(1.0);  // RMSNorm gains
      continue;
    }
    // Drawn in fp32 on the CPU and copied, so every device and dtype gets the same values.
    torch::Tensor draw = torch::empty(w.sizes(), torch::kFloat32);
    draw.normal_(0.0, cfg_.init_std, gen);
    w.copy_(draw);
    // Vocabulary padding rows start (and, masked in the loss, stay) zero.
    if (w.size(0) == cfg_.padded_vocab_size() && cfg_.padded_vocab_size() > cfg_.vocab_size &&
        (p.key() == "model.embed_tokens.weight" || p.key() == "lm_head.weight")) {
      w.narrow(0, cfg_.vocab_size, w.size(0) - cfg_.vocab_size).zero_();
    }
  }
}

}  // namespace pajama
