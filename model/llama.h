// The LLaMA decoder-only transformer (token embedding, n_layers pre-norm blocks with
// RoPE + GQA attention and SwiGLU MLP, final RMSNorm, LM head), laid out so that
// named_parameters() yields exactly transformers' LlamaForCausalLM names in its order:
//   model.embed_tokens.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
//   model.layers.{i}.mlp.{gate,up,down}_proj.weight, model.layers.{i}.input_layernorm.weight,
//   model.layers.{i}.post_attention_layernorm.weight, model.norm.weight, lm_head.weight
// (lm_head absent with tie_embeddings). Checkpoints rely on these names; a test pins them.
//
//   Llama model(cfg);  model->init_weights(seed);  model->to(device, dtype);
//   model->set_training_options(opts);  // activation checkpointing, loss chunking, z-loss
//   torch::Tensor loss = model->loss(tokens, targets);  // fp32 scalar
//
// Parameters may be re-pointed (param.set_data) by the optimizer; nothing here caches
// their storage. RoPE tables are plain members (not buffers): they stay out of
// named_parameters()/named_buffers() and are kept in fp32, cast per activation dtype.
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "model/linear.h"
#include "model/llama_config.h"
#include "model/rms_norm.h"
#include "model/kv_cache.h"
#include "model/rope.h"
#include "model/training_options.h"
#include "model/transformer_block.h"

namespace pajama {

// The `model.` part of HF's LlamaForCausalLM: embeddings, layers, final norm.
class LlamaBodyImpl : public torch::nn::Module {
 public:
  explicit LlamaBodyImpl(const LlamaConfig& cfg);

  Embedding embed_tokens{nullptr};  // (padded_vocab_size, dim)
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBody);

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const LlamaConfig& cfg);  // validates cfg; weights zero (norms one) until init_weights

  // tokens (B, T) int64, T <= max_seq_len -> logits (B, T, vocab_size) in the parameter dtype.
  torch::Tensor forward(const torch::Tensor& tokens);
  // Incremental decoding: tokens (B, T) continue the cache's cache.length positions;
  // returns the logits (B, T, vocab_size) of the new positions (only the last one's with
  // last_only) and advances cache.length by T. Same values as forward() on the whole
  // sequence. Inference only (no autograd graph).
  torch::Tensor forward_cached(const torch::Tensor& tokens, KvCache& cache, bool last_only = false);
  // Final hidden states (B, T, dim) after the last RMSNorm, before the head. With grad mode
  // on, each block runs as training_options().checkpointing says (same values either way).
  torch::Tensor hidden_states(const torch::Tensor& tokens);
  // Mean next-token cross-entropy over all B*T positions, computed in fp32 (plus the z-loss
  // term when training_options().z_loss > 0), through chunked_linear_cross_entropy: the
  // (B*T, vocab) logits are never materialised. targets[b, t] is the token that should
  // follow tokens[b, 0..t].
  torch::Tensor loss(const torch::Tensor& tokens, const torch::Tensor& targets);

  // Validates and keeps `options` for later forward/loss calls. Default: TrainingOptions{}.
  void set_training_options(const TrainingOptions& options);
  const TrainingOptions& training_options() const { return training_; }

  // LLaMA/HF init: every matrix and the embedding ~ normal(0, init_std), norms = 1.
  // Draws from its own CPU generator seeded with `seed` in named_parameters() order, so the
  // result is the same on every device, dtype and rank, and the global RNG is untouched.
  void init_weights(uint64_t seed);

  const LlamaConfig& config() const { return cfg_; }
  // The LM head matrix (padded_vocab_size, dim): lm_head.weight, or the embedding when tied.
  torch::Tensor head_weight() const;

  LlamaBody model{nullptr};
  Linear lm_head{nullptr};  // null when tie_embeddings

 private:
  LlamaConfig cfg_;
  TrainingOptions training_;
  RopeTables rope_;
};
TORCH_MODULE(Llama);

}  // namespace pajama
