// The shape of a LLaMA-architecture model (RMSNorm, RoPE, SwiGLU, GQA) and the
// published presets. Owned by model/; trainer/ maps YAML keys onto it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pajama {

struct LlamaConfig {
  int64_t vocab_size = 32000;       // tokens in the vocabulary (the tokenizer's pieces)
  int64_t vocab_multiple_of = 1;    // embedding and head rows = vocab_size rounded up to a multiple of this
  int64_t dim = 4096;               // hidden size
  int64_t n_layers = 32;            // transformer blocks
  int64_t n_heads = 32;             // query heads
  int64_t n_kv_heads = 0;           // key/value heads (GQA); 0 = n_heads
  int64_t ffn_dim = 0;              // SwiGLU hidden size; 0 = LLaMA's rule from dim, multiple_of, ffn_dim_multiplier
  int64_t multiple_of = 256;        // LLaMA's rule rounds the ffn size up to a multiple of this
  double ffn_dim_multiplier = 1.0;  // LLaMA's rule scales 8*dim/3 by this before rounding
  double norm_eps = 1e-5;           // RMSNorm epsilon
  double rope_theta = 10000.0;      // RoPE base frequency
  int64_t max_seq_len = 2048;       // longest sequence the RoPE tables cover
  bool tie_embeddings = false;      // share the token embedding with the LM head
  double init_std = 0.02;           // normal init std for every matrix (HF initializer_range)

  int64_t head_dim() const { return dim / n_heads; }
  // Rows of the embedding and the LM head: vocab_size padded for GEMM-friendly shapes
  // (Megatron pads to 128). Padded rows are never a target: the loss masks their logits,
  // so they get no probability mass and no gradient; exports drop them.
  int64_t padded_vocab_size() const { return (vocab_size + vocab_multiple_of - 1) / vocab_multiple_of * vocab_multiple_of; }
  int64_t kv_heads() const { return n_kv_heads > 0 ? n_kv_heads : n_heads; }
  // ffn_dim if set, else multiple_of * ceil(int(ffn_dim_multiplier * int(8 * dim / 3)) / multiple_of).
  int64_t hidden_ffn_dim() const;
  // Throws ConfigError about the offending field (core/error.h ConfigField) and its value.
  void validate() const;
};

// The fields that decide parameter shapes and differ between a and b, one line each:
// "\n  <key_prefix><field>: <a_label> <value>, <b_label> <value>"; empty when the shapes agree.
std::string shape_differences(const LlamaConfig& a, const LlamaConfig& b, const std::string& a_label,
                              const std::string& b_label, const std::string& key_prefix, bool include_vocab = true);

// Published shapes: llama-7b, llama-13b, llama-33b, llama-65b, llama2-7b, baichuan-7b,
// plus the project sizes tiny, 125m, 350m, 1b. Throws ConfigError listing the names.
LlamaConfig llama_preset(const std::string& name);
std::vector<std::string> llama_preset_names();

}  // namespace pajama
