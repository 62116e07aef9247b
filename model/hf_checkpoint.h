// Hugging Face LLaMA checkpoints (FORMATS.md 5.2-5.4): config.json plus model.safetensors
// or model-0000i-of-0000n.safetensors shards with model.safetensors.index.json, loadable
// by transformers' LlamaForCausalLM.from_pretrained and produced by its save_pretrained.
// Tensor names map one to one (our RoPE uses HF's rotate_half convention).
//
//   LlamaConfig cfg = read_hf_config(dir);  Llama model(cfg);  load_hf_weights(*model, dir);
//   save_hf(*model, out_dir);
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"
#include "model/llama_config.h"

namespace pajama {

// The weight files of a Hugging Face safetensors checkpoint: one file, or shards named by
// an index.
inline constexpr const char* kHfSingleFile = "model.safetensors";
inline constexpr const char* kHfIndexFile = "model.safetensors.index.json";

// Maps config.json onto LlamaConfig: hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads (null -> heads), rms_norm_eps,
// max_position_embeddings, rope_theta (top level or rope_parameters.rope_theta),
// tie_word_embeddings, initializer_range; missing keys take transformers' defaults.
// Throws ConfigError for another model_type/architecture, a head_dim other than
// hidden/heads, biases, rope scaling or an activation other than silu.
LlamaConfig read_hf_config(const std::filesystem::path& dir);

// Copies every weight from `dir` into the model's parameters (keeping their storage,
// device and dtype; F32/F16/BF16 are converted). *.rotary_emb.inv_freq is ignored. Any
// missing or unexpected name or shape mismatch throws one CheckpointError listing them all.
// vocab_rows >= 0: the first vocab_rows rows of the files' embedding and LM head (they may
// have more: padding) fill the model's first rows (a grown vocabulary; model/vocab_resize.h
// fills the rest).
void load_hf_weights(LlamaImpl& model, const std::filesystem::path& dir, int64_t vocab_rows = -1);
void load_hf_weights(Llama& model, const std::filesystem::path& dir, int64_t vocab_rows = -1);

// Writes config.json and the weights (in the parameters' dtype) to `dir`, creating it
// (vocabulary padding rows, model.vocab_multiple_of, are dropped: vocab_size rows):
// one model.safetensors, or shards of at most max_shard_bytes (a larger tensor gets its
// own shard) named model-0000i-of-0000n.safetensors with model.safetensors.index.json.
// Every file is written under a temporary name and renamed.
void save_hf(LlamaImpl& model, const std::filesystem::path& dir, int64_t max_shard_bytes = 5'000'000'000);
void save_hf(Llama& model, const std::filesystem::path& dir, int64_t max_shard_bytes = 5'000'000'000);

// The same from tensors fetched one shard at a time (`pajama convert` streams a
// checkpoint's weights this way, never holding the whole model): `tensors` lists each
// HF name with its element count in state-dict order, `fetch(name)` returns it in
// `dtype`; `progress(bytes_done, bytes_total)` is called after each shard.
using HfTensorFetch = std::function<torch::Tensor(const std::string& name)>;
using HfProgress = std::function<void(int64_t done, int64_t total)>;
void save_hf_tensors(const LlamaConfig& cfg, torch::ScalarType dtype,
                     const std::vector<std::pair<std::string, int64_t>>& tensors, const HfTensorFetch& fetch,
                     const std::filesystem::path& dir, int64_t max_shard_bytes = 5'000'000'000,
                     const HfProgress& progress = nullptr);

// The config.json text save_hf writes for `cfg` with weights in `dtype`.
std::string hf_config_json(const LlamaConfig& cfg, torch::ScalarType dtype);

}  // namespace pajama
