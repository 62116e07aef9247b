// Shared helpers for the model tests: scratch directories and tensor comparisons.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include <atomic>
#include <filesystem>
#include <string>

#include <torch/torch.h>

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

// rm -rf, best effort.
inline void remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// A fresh empty directory under the build tree (or /tmp), removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    const char* bin = std::getenv("PAJAMA_BINARY_DIR");
    const std::filesystem::path base =
        bin != nullptr && *bin != '\0' ? std::filesystem::path(bin) / "tmp" : std::filesystem::temp_directory_path();
    path_ = base / ("model_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    remove_tree(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    remove_tree(path_);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace pajama::testing
