// Helpers for the model tests (the general ones are common/support.h): small configs
// and tensor comparisons.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include <torch/torch.h>

#include "common/support.h"
#include "model/llama_config.h"

namespace pajama::testing {

// A tiny GQA LLaMA (vocab 37, dim 16, 4 heads / 2 kv, ffn 24, seq <= 12) for fast tests.
inline LlamaConfig small_gqa_config(int64_t n_layers, bool tied) {
  LlamaConfig c;
  c.vocab_size = 37;
  c.dim = 16;
  c.n_layers = n_layers;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 24;
  c.max_seq_len = 12;
  c.tie_embeddings = tied;
  return c;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace pajama::testing
